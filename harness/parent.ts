/**
 * The child's side of harness/child.ts: messages to the orchestrator over the IPC channel, answers
 * to its calls, a `fatal` message for an uncaught error, and an exit once the orchestrator is gone.
 */
import type { CallMap, CallMessage, Message, ReplyMessage } from './child';

/** Sends `message` to the orchestrator; `then` runs once it has been handed over (at once with no channel). */
export function sendToParent(message: object, then?: () => void): void {
  if (process.send === undefined || !process.connected) then?.();
  else process.send(message, undefined, undefined, () => then?.());
}

/** Answers the orchestrator's calls (`Child.call`) with `answerers`, one async function per call. */
export function answerCalls<Calls extends CallMap<Calls>>(answerers: {
  [K in keyof Calls]: (args: Calls[K]['args']) => Promise<Calls[K]['result']>;
}): void {
  process.on('message', (received: Message) => {
    if (received.type !== 'call') return;
    const message = received as CallMessage;
    const reply = (outcome: Pick<ReplyMessage, 'result'> | Pick<ReplyMessage, 'error'>): void => {
      sendToParent({ type: 'reply', seq: message.seq, ...outcome });
    };
    const answer = (answerers as Record<string, ((args: unknown) => Promise<unknown>) | undefined>)[message.call];
    if (answer === undefined) reply({ error: `unknown call '${message.call}'` });
    else
      answer(message.args).then(
        (result) => {
          reply({ result });
        },
        (error: unknown) => {
          reply({ error: String(error) });
        },
      );
  });
}

/** Sends `error` to the orchestrator as a `fatal` message, then exits with code 2. */
export function reportFatal(error: unknown): void {
  sendToParent({ type: 'fatal', error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, () =>
    process.exit(2),
  );
}

/** Exits with code 0 once the orchestrator's IPC channel closes; returns the listener, to remove it. */
export function exitWithParent(): () => void {
  const exit = (): void => process.exit(0);
  process.on('disconnect', exit);
  return exit;
}
