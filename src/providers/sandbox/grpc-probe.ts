// The kubelet's gRPC probe: grpc.health.v1.Health/Check over plaintext HTTP/2 to the pod's
// address; healthy when the service answers SERVING. The messages are two tiny protobufs, encoded
// by hand: HealthCheckRequest { string service = 1 }, HealthCheckResponse { ServingStatus status = 1 }.
import http2 from 'node:http2';
import type { ProbeResult } from './probes.ts';

const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** A gRPC length-prefixed message (uncompressed) holding HealthCheckRequest{service}. */
export function healthCheckRequest(service: string): Buffer {
  const name = Buffer.from(service);
  const body = name.length > 0 ? Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]) : Buffer.alloc(0);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  while (value > 0x7f) {
    bytes.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  bytes.push(value);
  return Buffer.from(bytes);
}

/** The status field of a length-prefixed HealthCheckResponse; 0 (UNKNOWN) when absent. */
export function healthCheckStatus(frame: Buffer): number {
  if (frame.length < 5) throw new Error('short gRPC message');
  const body = frame.subarray(5, 5 + frame.readUInt32BE(1));
  for (let i = 0; i < body.length;) {
    const tag = body[i++]!;
    let value = 0;
    let shift = 0;
    for (;;) {
      const b = body[i++];
      if (b === undefined) throw new Error('truncated HealthCheckResponse');
      value |= (b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) break;
    }
    if (tag === 0x08) return value;
    if ((tag & 7) === 2) i += value; // a length-delimited field we do not know
  }
  return 0;
}

export function grpcProbe(host: string, port: number, service: string, timeoutMs: number): Promise<ProbeResult> {
  const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ ok: false, message: `timeout: health rpc did not complete within ${Math.round(timeoutMs / 1000)}s` }), timeoutMs);
    const session = http2.connect(`http://${target}`);
    session.on('error', (err) =>
      done({ ok: false, message: `timeout: failed to connect service "${target}" within ${Math.round(timeoutMs / 1000)}s: ${err.message}` }),
    );
    const stream = session.request({
      ':method': 'POST',
      ':path': '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'kube-probe/1.36',
    });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    let grpcMessage = '';
    stream.on('response', (headers) => {
      if (headers['grpc-status'] !== undefined) grpcStatus = String(headers['grpc-status']);
    });
    stream.on('trailers', (trailers) => {
      grpcStatus = String(trailers['grpc-status'] ?? grpcStatus ?? '');
      grpcMessage = String(trailers['grpc-message'] ?? '');
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', (err) => done({ ok: false, message: `health rpc probe failed: ${err.message}` }));
    stream.on('end', () => {
      if (grpcStatus !== '0') {
        done({ ok: false, message: `health rpc probe failed: rpc error: code = ${grpcStatus ?? 'unknown'} desc = ${grpcMessage}` });
        return;
      }
      try {
        const status = healthCheckStatus(Buffer.concat(chunks));
        done(
          status === 1 ? { ok: true, message: '' } : { ok: false, message: `service unhealthy (responded with "${SERVING_STATUS[status] ?? String(status)}")` },
        );
      } catch (err) {
        done({ ok: false, message: `health rpc probe failed: ${(err as Error).message}` });
      }
    });
    stream.end(healthCheckRequest(service));
  });
}
