// Real Node.js work for the runtime e2e test: Buffers, JSON, crypto, and a
// small HTTP server on 127.0.0.1 (port chosen by the kernel) that serves a
// few requests to this same process, then closes. Deterministic output.
'use strict';
const http = require('http');
const crypto = require('crypto');

function work(rounds) {
  const h = crypto.createHash('sha256');
  const kept = [];
  for (let r = 0; r < rounds; r++) {
    const obj = {};
    for (let i = 0; i < 2000; i++) obj['k' + i] = { id: i, s: 'v'.repeat(i % 13), a: [i, r, i * r] };
    const text = JSON.stringify(obj);
    const back = JSON.parse(text);
    if (back['k1999'].a[2] !== 1999 * r) throw new Error('json round trip');
    const buf = Buffer.alloc(64 * 1024, r);
    buf.write(text.slice(0, 1000));
    h.update(buf);
    kept.push(Buffer.from(text.slice(0, 4096)));
  }
  return h.digest('hex') + ' kept ' + kept.reduce((n, b) => n + b.length, 0);
}

function get(port, path) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve(res.statusCode + ' ' + Buffer.concat(parts).toString()));
    }).on('error', reject);
  });
}

async function main() {
  const rounds = Number(process.argv[2] || 20);
  console.log('node work', work(rounds));
  let served = 0;
  const server = http.createServer((req, res) => {
    served++;
    const n = Number(req.url.slice(1));
    const body = JSON.stringify({ n, sq: n * n, pad: 'p'.repeat(n * 100) });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(crypto.createHash('md5').update(body).digest('hex'));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  for (let i = 1; i <= 8; i++) console.log('GET /' + i, await get(port, '/' + i));
  await new Promise((resolve) => server.close(resolve));
  console.log('served', served);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
