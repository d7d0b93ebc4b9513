import cliProgress from 'cli-progress';

/** How a long-running command shows progress (0-100) and a short state word. */
export interface ProgressView {
  update(percent: number, state: string): void;
  /** Idempotent; must be called on every exit path (a bar holds a render timer). */
  stop(): void;
}

/** An interactive bar redrawn in place: only for a TTY (it writes cursor escapes). */
export function barProgressView(stream: NodeJS.WritableStream, label: string): ProgressView {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} {bar} {percentage}% | {state}`,
      // A Ctrl-C while waiting must not leave the user's terminal without a cursor.
      hideCursor: false,
      clearOnComplete: false,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(100, 0, { state: 'Pending' });
  let stopped = false;
  return {
    update: (percent, state) => {
      if (!stopped) bar.update(clampPercent(percent), { state });
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}

/** One line per change, for logs and pipes: `progress 40% Executing`. */
export function lineProgressView(out: (line: string) => void): ProgressView {
  let last = '';
  return {
    update: (percent, state) => {
      const line = `progress ${clampPercent(percent)}% ${state}`;
      if (line !== last) out(line);
      last = line;
    },
    stop: () => {},
  };
}

function clampPercent(p: number): number {
  return Number.isFinite(p) ? Math.min(100, Math.max(0, Math.floor(p))) : 0;
}
