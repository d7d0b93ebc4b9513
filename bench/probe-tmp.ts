import { HnswIndex, buildIndex } from '../src/index/index.js';
import { clustered } from './common.js';
const N=20000, D=128, Q=1000;
const v = clustered(N, D, 1); const qs = clustered(Q, D, 2);
const h = HnswIndex.build(v, D, 'L2', {M:16, efConstruction:200});
const u = buildIndex(v, D, 'L2', 'HNSW', {M:16, efConstruction:200}, {threads:2});
const s8 = buildIndex(v, D, 'L2', 'HNSW_SQ', {M:16, efConstruction:200, sqType:'SQ8', refine:true}, {threads:2});
for (let rep=0; rep<2; rep++) for (const [name, idx, extra] of [['hnswlib',h,{}],['usearch',u,{}],['sq8+refine2',s8,{refineK:2}]] as const) {
  const t=performance.now();
  for (let i=0;i<Q;i++) idx.search(qs.subarray(i*D,(i+1)*D), 1, {k:10, ef:64, ...extra});
  console.log(name, Math.round(Q/((performance.now()-t)/1000)), 'qps');
}
