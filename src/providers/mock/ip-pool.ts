// The mock's pod addresses: sequential from network+2 (network+1 is the notional gateway);
// freed ones are reused once the range is spent.
import { ConfigError } from '../../errors.ts';
import { parseIPv4Cidr } from '../../util/ipv4.ts';

export class IpPool {
  private readonly first: number;
  private readonly size: number;
  private next = 0;
  private readonly free: number[] = [];
  inUse = 0;

  constructor(cidr: string) {
    const parsed = parseIPv4Cidr(cidr);
    if (!parsed) throw new ConfigError(`mock: invalid podCIDR ${cidr}`);
    this.first = parsed.base + 2;
    this.size = 2 ** (32 - parsed.bits) - 3;
  }

  /** An address, or undefined when every one is in use. */
  allocate(): number | undefined {
    let ip: number | undefined;
    if (this.next < this.size) ip = this.first + this.next++;
    else ip = this.free.pop();
    if (ip !== undefined) this.inUse++;
    return ip;
  }

  /** Marks a specific address (a restored pod's) as in use; false when outside the range or taken. */
  reserve(ip: number): boolean {
    const offset = ip - this.first;
    if (offset < 0 || offset >= this.size) return false;
    if (offset >= this.next) {
      for (let o = this.next; o < offset; o++) this.free.push(this.first + o);
      this.next = offset + 1;
    } else {
      const i = this.free.indexOf(ip);
      if (i < 0) return false;
      this.free.splice(i, 1);
    }
    this.inUse++;
    return true;
  }

  release(ip: number): void {
    this.free.push(ip);
    this.inUse--;
  }
}
