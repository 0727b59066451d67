import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The test certificate (spec/fixtures/tls): self-signed for localhost and 127.0.0.1; clients pass `cert` as `ca`. */
export function testCertificate(): { key: Buffer; cert: Buffer } {
  const dir = join(__dirname, '..', 'spec', 'fixtures', 'tls');
  return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
}
