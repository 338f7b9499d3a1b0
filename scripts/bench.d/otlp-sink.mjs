// A minimal OTLP/HTTP trace receiver for scripts/bench (BENCH_ONLY=tracing):
// answers every POST with 200 and an empty ExportTraceServiceResponse,
// keeps connections alive, prints "port=N" once listening and, on SIGTERM,
// "exports=N bytes=N" before it exits.
import http from 'node:http';

let exports = 0;
let bytes = 0;
const srv = http.createServer((req, res) => {
  req.on('data', (c) => { bytes += c.length; });
  req.on('end', () => {
    exports++;
    const proto = req.headers['content-type'] === 'application/x-protobuf';
    res.writeHead(200, { 'content-type': proto ? 'application/x-protobuf' : 'application/json' });
    res.end(proto ? '' : '{}');
  });
});
srv.keepAliveTimeout = 60000;
srv.listen(0, '127.0.0.1', () => console.log(`port=${srv.address().port}`));
process.on('SIGTERM', () => {
  console.log(`exports=${exports} bytes=${bytes}`);
  process.exit(0);
});
