import usearch from 'usearch';
import { clusteredVectors } from '../src/testing/index.js';
import { flatSearch } from '../src/index/index.js';
const N=20000, D=128, NQ=100;
const v = clusteredVectors({n:N, dim:D, clusters:100, seed:42});
const qs = clusteredVectors({n:NQ, dim:D, clusters:100, seed:42, sampleSeed:9});
const keys = new BigUint64Array(N); for (let i=0;i<N;i++) keys[i]=BigInt(i);
for (const [metric, mm] of [['l2sq','L2'],['ip','IP'],['cos','COSINE']] as const) {
  const truth = flatSearch(v, D, mm, qs, NQ, {k:10});
  for (const qz of ['i8','e4m3','e5m2','f16']) {
    try {
    const idx = new usearch.Index({dimensions:D, metric: metric as any, quantization:qz as any, connectivity:16, expansion_add:200, expansion_search:1, multi:false});
    idx.add(keys, v, 2);
    let hit=0, hit2=0;
    for (let q=0;q<NQ;q++){ const r = idx.search(qs.subarray(q*D,(q+1)*D), 64, 1) as any; const t=new Set(truth[q]!.rows); for (let i=0;i<10;i++) if (t.has(Number(r.keys[i]))) hit++; for (let i=0;i<64;i++) if (t.has(Number(r.keys[i]))) hit2++; }
    console.log(metric, qz, 'recall@10', hit/NQ/10, 'recall10@64', hit2/NQ/10);
    } catch(e) { console.log(metric, qz, String(e)); }
  }
}
