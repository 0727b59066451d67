import type { Socket } from 'node:net';
import type { Connection, ConnectionRegistry, Http1Connection } from './connection-registry';
import { addressPair } from './node-internals';

/**
 * HTTPS (and HTTP/2 over TLS): a connection is the TCP socket from `connection` while its TLS
 * handshake runs, then the TLS socket from `secureConnection`, which is what is tracked, ended and
 * destroyed; the TCP socket under it is never destroyed on its own under an open request. Node
 * gives no public link between the two sockets: they are matched by their address pair.
 */
export class TlsHandoff {
  /** TCP connections still in their TLS handshake, by their address pair. */
  private readonly handshaking = new Map<string, Http1Connection>();
  /** The address pair of each connection in `handshaking`: kept here, not on every record, for the few in a handshake. */
  private readonly keys = new Map<Connection, string>();

  constructor(private readonly registry: ConnectionRegistry) {}

  /** A TCP connection: new, and in its handshake. */
  accept(socket: Socket): Http1Connection {
    const c = this.registry.accept(socket, true);
    const key = addressPair(socket);
    this.handshaking.set(key, c);
    this.keys.set(c, key);
    return c;
  }

  /** The handshake is done: the connection continues on `tlsSocket` (one this adapter never saw is adopted). */
  secured(tlsSocket: Socket): Http1Connection {
    const c = this.handshaking.get(addressPair(tlsSocket));
    if (c === undefined) return this.registry.accept(tlsSocket, true);
    this.forget(c);
    this.registry.move(c, tlsSocket);
    c.bytesAtIdle = 0;
    return c;
  }

  /** `c` is gone, or past its handshake. */
  forget(c: Connection): void {
    if (this.keys.size === 0) return; // not TLS, or no handshake under way: every close passes here
    const key = this.keys.get(c);
    if (key === undefined) return;
    this.handshaking.delete(key);
    this.keys.delete(c);
  }
}
