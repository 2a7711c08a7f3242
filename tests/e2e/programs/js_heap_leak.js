// A Node.js service that keeps JavaScript objects in a Map at a steady
// rate (its heap grows in V8's pages, which V8 maps directly), for SECONDS.
// Prints its resident size every half second while it leaks, as
// "rss T BYTES" lines (T in seconds): V8's heap grows in steps (new space,
// promotion, compaction), so the test fits a line through them all.
// Usage: node js_heap_leak.js OBJECTS_PER_SECOND SECONDS
const [rate, seconds] = process.argv.slice(2).map(Number);
const kept = new Map();
const t0 = process.hrtime.bigint();
const now = () => Number(process.hrtime.bigint() - t0) / 1e9;
let made = 0, lastReport = 0;
function report() { console.log(`rss ${now().toFixed(3)} ${process.memoryUsage().rss}`); }
report();
const timer = setInterval(() => {
  const target = Math.floor(rate * now());
  for (; made < target; made++) kept.set(made, { id: made, name: 'session-' + made, payload: 'x'.repeat(200) + made });
  if (now() - lastReport >= 0.5) {
    lastReport = now();
    report();
  }
  if (now() >= seconds) {
    clearInterval(timer);
    report();
    console.log(`kept ${kept.size}`);
  }
}, 5);
