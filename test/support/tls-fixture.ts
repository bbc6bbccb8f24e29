import { fileURLToPath } from 'node:url';

/** The self-signed localhost certificate of test/fixtures (see its README to regenerate it). */
export const CERT_PATH = fileURLToPath(new URL('../fixtures/tls-cert.pem', import.meta.url));
export const KEY_PATH = fileURLToPath(new URL('../fixtures/tls-key.pem', import.meta.url));
