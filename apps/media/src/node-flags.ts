/**
 * The node flags the media process runs with in production: docker-compose.yml, infra/k8s and the
 * README's table of commands (test/platform/deploy.test.ts holds them to this list), and bench:media's
 * and bench:scale's media processes.
 *
 * --heap-growing-percent=100: the old generation may double past what survived the last full
 * collection before the next one (V8 picks 1.1–1.3× for this process on its own). A hundred calls
 * kept ~60 MB alive and V8 collected it fully about once a second; each full collection also drops
 * the optimised code that referred to what it freed, which is then compiled again. Measured in one
 * run (BENCH_B_FLAGS, web calls): full collections 68 → 6, CPU per call-second 5.27 → 4.08 ms
 * (0.77×), the bare relay unchanged (1.00×); the heap peaks ~60 MB higher, resident size per call
 * is unchanged.
 *
 * --single-threaded-gc: the collector works on the event loop's thread only. V8's parallel and
 * concurrent helper threads otherwise run beside it on the cores the process has, and on the one
 * core a media process is sized for they competed with its calls' audio for no saving: the same
 * run with and without cost the same CPU per call-second (1.02×), while the turn overhead p95 went
 * from 145 to 14 ms and late frames from 6,447 to 159 on a loaded machine.
 */
export const MEDIA_NODE_FLAGS: readonly string[] = ["--single-threaded-gc", "--heap-growing-percent=100"];
