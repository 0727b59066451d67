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

  constructor(private readonly registry: ConnectionRegistry) {}

  /** A TCP connection: new, and in its handshake. */
  accept(socket: Socket): Http1Connection {
    const c = this.registry.accept(socket, true);
    c.handshake = addressPair(socket);
    this.handshaking.set(c.handshake, c);
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
    if (c.protocol !== 'http1' || c.handshake === undefined) return;
    this.handshaking.delete(c.handshake);
    c.handshake = undefined;
  }
}
