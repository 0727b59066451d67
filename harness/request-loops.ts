/**
 * Request loops: many loops that each send one request at a time through their own requester (an
 * HTTP/1.1 connection, an HTTP/2 session, `fetch`), each bounded by a request count and a deadline,
 * handing what became of every request to the caller as it ends.
 */

/** A whole response as a client read it. */
export interface WholeResponse {
  readonly status: number;
  /** Its `x-request-id` header. */
  readonly echoedId: string | undefined;
  readonly body: Buffer;
}

/** Why a whole response is not the right one for request `id`, or undefined if it is. */
export type Verify = (id: string, response: WholeResponse) => string | undefined;

/**
 * What became of one request: completed; refused (`ECONNREFUSED`, nothing sent); failed, with
 * whether its bytes were `sent` and whether it was the first on its connection (`fresh`); or
 * answered by a whole response that is `wrong`.
 */
export type Outcome =
  | { readonly kind: 'completed' }
  | { readonly kind: 'refused' }
  | { readonly kind: 'failed' | 'wrong'; readonly reason: string; readonly sent: boolean; readonly fresh: boolean };

/** One loop's way of sending request `id` with a deadline of `timeoutMs`, and of letting go of what it holds. */
export interface Requester {
  request(id: string, timeoutMs: number): Promise<Outcome>;
  close(): void;
}

/** The loops to run: how many, their requesters, their bounds, and what to do with each outcome. */
export interface LoopOptions {
  readonly clients: number;
  readonly requester: (client: number) => Requester;
  /** No request begins after this moment (Date.now()), and none waits past it. */
  readonly deadline: number;
  readonly maxRequestsPerLoop: number;
  /** A request with no answer after this many ms fails (default: at the deadline). */
  readonly requestTimeoutMs?: number;
  /** Called as request `id` of loop `client` begins; the function it returns takes the outcome: true goes on, false ends the loop. */
  readonly begin: (id: string, client: number) => (outcome: Outcome) => boolean | Promise<boolean>;
}

/** Runs the loops until every one has ended, and resolves with how many the deadline ended. */
export async function runLoops(options: LoopOptions): Promise<number> {
  let atDeadline = 0;
  const loop = async (client: number): Promise<void> => {
    const requester = options.requester(client);
    try {
      for (let seq = 0; seq < options.maxRequestsPerLoop; seq++) {
        const left = options.deadline - Date.now();
        if (left <= 0) {
          atDeadline++;
          return;
        }
        const id = `${client}-${seq}`;
        const record = options.begin(id, client);
        const outcome = await requester.request(id, Math.min(left, options.requestTimeoutMs ?? left));
        if (!(await record(outcome))) return;
      }
    } finally {
      requester.close();
    }
  };
  await Promise.all(Array.from({ length: options.clients }, (_, client) => loop(client)));
  return atDeadline;
}
