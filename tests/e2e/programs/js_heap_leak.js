// A Node.js service that keeps JavaScript objects in a Map at a steady
// rate (its heap grows in V8's pages, which V8 maps directly), for SECONDS.
// Prints its resident size at the start and at the end of the leak, as
// "rss T BYTES" lines (T in seconds), then exits.
// Usage: node js_heap_leak.js OBJECTS_PER_SECOND SECONDS
const [rate, seconds] = process.argv.slice(2).map(Number);
const kept = new Map();
const t0 = process.hrtime.bigint();
const now = () => Number(process.hrtime.bigint() - t0) / 1e9;
let made = 0;
function report() { console.log(`rss ${now().toFixed(3)} ${process.memoryUsage().rss}`); }
report();
const timer = setInterval(() => {
  const target = Math.floor(rate * now());
  for (; made < target; made++) kept.set(made, { id: made, name: 'session-' + made, payload: 'x'.repeat(200) + made });
  if (now() >= seconds) {
    clearInterval(timer);
    report();
    console.log(`kept ${kept.size}`);
  }
}, 5);
