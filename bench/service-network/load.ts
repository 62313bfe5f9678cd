// Runs inside a pod's network namespace (nsenter --net): TCP server or client for the
// service-network benchmark. A connection is connect, read the server's short reply, close. The
// client closes first, so TIME_WAIT stays on its side, where the benchmark lets it reuse ports
// (tcp_tw_reuse in the client pod's namespace): tens of thousands of connections a round would
// otherwise collide with the server's TIME_WAIT entries and slow down whichever path runs later.
//   node load.ts serve <port>
//   node load.ts connect <host> <port> <seconds> <concurrency>   → prints {"connections":N,"seconds":S,"errors":E}
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);
if (mode === 'serve') {
  const reply = Buffer.from('ok\n');
  net
    .createServer((socket) => {
      socket.on('error', () => {});
      socket.on('end', () => socket.end());
      socket.write(reply);
    })
    .listen(Number(args[0]), '0.0.0.0', () => process.stdout.write('listening\n'));
} else if (mode === 'connect') {
  const [host, port, seconds, concurrency] = [args[0]!, Number(args[1]), Number(args[2]), Number(args[3])];
  let connections = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const once = () =>
    new Promise<void>((resolve) => {
      const socket = net.connect({ host, port });
      socket.once('data', () => socket.end());
      socket.on('close', (hadError) => {
        if (!hadError) connections++;
        resolve();
      });
      socket.on('error', () => errors++);
    });
  const loop = async () => {
    while (performance.now() < deadline) await once();
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  process.stdout.write(`${JSON.stringify({ connections, errors, seconds: (performance.now() - started) / 1000 })}\n`);
} else {
  process.stderr.write('usage: load.ts serve <port> | connect <host> <port> <seconds> <concurrency>\n');
  process.exit(2);
}
