// Node.js with Buffers: zero-filled and unsafe allocations of many sizes
// (the large ones come from the C allocator), concatenation, slicing,
// base64/hex conversions, JSON. Usage: node node_buffers.js [SCALE=1]
'use strict';
const scale = process.argv[2] ? Number(process.argv[2]) : 1;
const n = Math.floor(60000 * scale);
let sum = 0;
const keep = [];
for (let i = 0; i < n; i++) {
  const a = Buffer.alloc(256 + (i % 64) * 128, i & 255);        // calloc-backed, 256 B .. 8 KiB
  const b = Buffer.allocUnsafe(9000 + (i % 16) * 512);          // past the pool: malloc-backed
  b.fill(i & 127);
  const c = Buffer.concat([a, b.subarray(0, 1000), Buffer.from('record-' + i)]);
  sum += c[c.length - 1] + c.length;
  if (i % 50 === 0) {
    const s = c.toString('base64');
    sum += Buffer.from(s, 'base64').length + c.subarray(0, 64).toString('hex').length;
  }
  if (i % 10 === 0) {
    const o = JSON.parse(JSON.stringify({ i, tag: 't' + (i % 97), data: a.subarray(0, 32).toJSON().data }));
    sum += o.data.length;
  }
  keep[i % 512] = c;  // some stay alive across GCs
}
console.log('checksum=' + sum);
