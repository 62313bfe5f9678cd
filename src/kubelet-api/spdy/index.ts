// SPDY/3.1 server side for the kubelet streaming endpoints (exec, attach, port-forward).
//
//   server.on('upgrade', (req, socket, head) => {
//     const up = upgradeToSpdy(req, socket, head, ['v4.channel.k8s.io', 'v3.channel.k8s.io'], { idleTimeoutMs });
//     if (!up) return; // 400/403 already written
//     up.connection.on('error', log);
//     up.connection.on('stream', (s) => { ... s.headers.streamtype ... }); // SYN_REPLY is automatic
//     ...; up.connection.close(); // RST unfinished streams, GOAWAY, end
//   });
export { SpdyConnection, SpdyStreamResetError, MAX_OUTGOING_DATA } from './connection.ts';
export type { SpdyConnectionOptions, SpdyStream } from './connection.ts';
export { upgradeToSpdy, negotiateProtocol, SPDY_31, HEADER_PROTOCOL_VERSION, HEADER_ACCEPTED_PROTOCOL_VERSIONS } from './upgrade.ts';
export { SpdyProtocolError, RstStatus, GoAwayStatus } from '../../protocol/spdy/frames.ts';
