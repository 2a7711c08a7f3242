// Node.js seed scenario for tests/e2e/cases/test_container_node.py: a
// service that keeps native memory (Buffer backing stores come from the
// native allocator through node's ArrayBuffer allocator, not from the JS
// heap) at a steady rate.
//
// No native churn on purpose: once V8 compiles the callback, JS frames
// become one anonymous [jit] frame, so a scratch Buffer allocated next to
// the leak would land in the same site, and the GC freeing a pile of
// scratch at once would make that site look transient.
// Usage: node node_native_leak.js [SECONDS] [BYTES_PER_S]
'use strict';

const seconds = Number(process.argv[2] || 12);
const rate = Number(process.argv[3] || 512 * 1024);
const BLOCK = 64 * 1024;

const retained = [];  // never trimmed: the leak
let retainedBytes = 0;

function rememberPayload(seq) {
  const b = Buffer.alloc(BLOCK, (seq % 251) + 1);  // filled: every page touched
  retained.push(b);
  retainedBytes += b.length;
}

const start = process.hrtime.bigint();
let seq = 0;
const timer = setInterval(() => {
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  while (retainedBytes + BLOCK <= rate * elapsed) rememberPayload(seq++);
  if (elapsed >= seconds) {
    clearInterval(timer);
    console.log(`node_native_leak: pid ${process.pid} retained ${retainedBytes} bytes in ${retained.length} buffers`);
  }
}, 20);
