import { randomFillSync } from 'node:crypto';

const ID_BYTES = 20;
/** Ids per refill: one getrandom() call serves this many connections. */
const IDS_PER_POOL = 256;

const pool = Buffer.allocUnsafe(ID_BYTES * IDS_PER_POOL);
let offset = pool.length;

/**
 * A random session id of 40 hex digits (160 bits from the CSPRNG), as `randomBytes(20)` gave,
 * taken from a pool refilled every 256 ids: one handshake no longer pays for a crypto call.
 */
export function randomSessionId(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString('hex', offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return id;
}
