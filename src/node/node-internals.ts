import type { ServerResponse } from 'node:http';

/**
 * True once `res` has written a head that says `Connection: close`, whoever decided it (the
 * client's request, the application's own header, or `shouldKeepAlive = false`).
 *
 * Node has no public flag for this. `OutgoingMessage#_last` is set by `_storeHeader` when the head
 * announces the end of the connection (read on Node 20.20); spec/node/node-internals.spec.ts fails
 * if a Node version stops setting it.
 */
export function announcedClose(res: ServerResponse): boolean {
  return res.headersSent && (res as ServerResponse & { _last?: boolean })._last === true;
}
