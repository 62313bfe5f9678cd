// Just enough DER to make a PKCS#10 certificate request and a self-signed server certificate
// with node:crypto keys and signatures (node:crypto parses X.509 but cannot create it).
// Keys are ECDSA P-256, signatures ecdsa-with-SHA256: what the kubelet itself uses.
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import net from 'node:net';
import { ConfigError, errorMessage } from '../errors.ts';

export interface Subject {
  commonName: string;
  organization?: string[];
}

export interface AltNames {
  dnsNames?: string[];
  ipAddresses?: string[];
}

// --- DER primitives.

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...content: Buffer[]): Buffer => tlv(0x30, ...content);
const set = (...content: Buffer[]): Buffer => tlv(0x31, ...content);
const octetString = (content: Buffer): Buffer => tlv(0x04, content);
const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'));
const bitString = (content: Buffer, unusedBits = 0): Buffer => tlv(0x03, Buffer.from([unusedBits]), content);
const boolean = (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0]));

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) {
    const encoded = [part & 0x7f];
    for (let v = Math.floor(part / 128); v > 0; v = Math.floor(v / 128)) encoded.unshift((v & 0x7f) | 0x80);
    bytes.push(...encoded);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** A non-negative INTEGER from big-endian bytes. */
function unsignedInteger(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return tlv(0x02, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function time(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii')) : tlv(0x18, Buffer.from(`${digits}Z`, 'ascii'));
}

// --- X.509 structures.

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  basicConstraints: '2.5.29.19',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};

function name(subject: Subject): Buffer {
  const rdns = [...(subject.organization ?? []).map((o) => [OID.organization, o] as const), [OID.commonName, subject.commonName] as const];
  return sequence(...rdns.map(([type, value]) => set(sequence(oid(type), utf8String(value)))));
}

/** IPv4 or IPv6 text as its 4 or 16 bytes. */
export function ipBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!net.isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups first.
  const text = ip.replace(
    /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
    (_m, a: string, b: string, c: string, d: string) => `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`,
  );
  const groups = (s: string | undefined): number[] => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const [head, tail] = text.split('::');
  const words =
    tail === undefined ? groups(head) : [...groups(head), ...new Array<number>(8 - groups(head).length - groups(tail).length).fill(0), ...groups(tail)];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

function altNames(names: AltNames): Buffer {
  return sequence(...(names.dnsNames ?? []).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))), ...(names.ipAddresses ?? []).map((ip) => tlv(0x87, ipBytes(ip))));
}

const SIGNATURE_ALGORITHM = sequence(oid(OID.ecdsaWithSHA256));

function spki(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

function signed(tbs: Buffer, key: KeyObject): Buffer {
  return sequence(tbs, SIGNATURE_ALGORITHM, bitString(sign('sha256', tbs, key)));
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** PKCS#8 PEM of the private key. */
  keyPem: string;
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, publicKey, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** A PEM CERTIFICATE REQUEST for `subject` with the subjectAltNames requested as an extension. */
export function createCertificateRequest(keys: KeyPair, subject: Subject, names: AltNames): string {
  const extensions = sequence(extension(OID.subjectAltName, false, altNames(names)));
  const attributes = tlv(0xa0, sequence(oid(OID.extensionRequest), set(extensions)));
  const info = sequence(unsignedInteger(Buffer.from([0])), name(subject), spki(keys.publicKey), attributes);
  return pem('CERTIFICATE REQUEST', signed(info, keys.privateKey));
}

/** A self-signed TLS server certificate (digitalSignature, serverAuth, not a CA). */
export function createSelfSignedCertificate(keys: KeyPair, subject: Subject, names: AltNames, options: { notBefore?: Date; validDays?: number } = {}): string {
  const notBefore = options.notBefore ?? new Date(Date.now() - 5 * 60_000); // tolerate clock skew
  const notAfter = new Date(notBefore.getTime() + (options.validDays ?? 365) * 86_400_000);
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const extensions = [
    extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)), // digitalSignature
    extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
    extension(OID.basicConstraints, true, sequence()),
    extension(OID.subjectAltName, false, altNames(names)),
  ];
  const tbs = sequence(
    tlv(0xa0, unsignedInteger(Buffer.from([2]))), // v3
    unsignedInteger(serial),
    SIGNATURE_ALGORITHM,
    name(subject),
    sequence(time(notBefore), time(notAfter)),
    name(subject),
    spki(keys.publicKey),
    tlv(0xa3, sequence(...extensions)),
  );
  return pem('CERTIFICATE', signed(tbs, keys.privateKey));
}

/** Throws a ConfigError unless `cert` (PEM, leaf first) and `key` (PEM) parse and belong together. */
/** Every certificate of a PEM client CA bundle parses, and there is one: what the TLS context would refuse later. */
export function checkClientCA(pem: string): void {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new ConfigError('kubelet API client CA: no PEM certificate in the bundle');
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new ConfigError(`kubelet API client CA: certificate ${i + 1} of ${blocks.length}: ${errorMessage(err)}`);
    }
  }
}

export function checkServingPair(cert: string, key: string): void {
  let matches: boolean;
  try {
    matches = new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new ConfigError(`kubelet API serving certificate: ${errorMessage(err)}`);
  }
  if (!matches) throw new ConfigError('kubelet API serving certificate: the key does not belong to the certificate');
}
