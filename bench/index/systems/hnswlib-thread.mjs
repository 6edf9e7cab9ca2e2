// Plain JS (worker threads do not get tsx's loader). Worker thread for hnswlib's 2-thread figure: loads the saved index, searches its share of queries on request.
import { parentPort, workerData } from 'node:worker_threads';
import hnswlib from 'hnswlib-node';

const { file, space, dim, queries, k } = workerData;
const index = new hnswlib.HierarchicalNSW(space, dim);
index.readIndexSync(file);
const q = [];
for (let i = 0; i < queries.length / dim; i++) q.push(Array.from(queries.subarray(i * dim, (i + 1) * dim)));

parentPort.on('message', (msg) => {
  if (msg.ef !== undefined) {
    index.setEf(msg.ef);
    const n = msg.warm ? Math.min(20, q.length) : q.length;
    for (let i = 0; i < n; i++) index.searchKnn(q[i], k);
  }
  parentPort.postMessage('done');
});
