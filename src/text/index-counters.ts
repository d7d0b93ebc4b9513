/**
 * How often this process built or opened a full-text index (BM25 and text/phrase match): the in-memory
 * build on first use (growing data, or a segment without an index file), the build that writes a
 * segment's file, and the opening of such a file. Tests read them to prove that a restart or a restore
 * opens the files instead of analysing the texts again.
 */
export const textIndexCounters = { builtOnFirstUse: 0, builtForFile: 0, loadedFromFile: 0 };
