/**
 * STYLE 18: tests against a real broker (Redis, NATS) may be skipped only outside CI, and
 * loudly. Whenever the CI variable is set (to anything), they never skip: a missing broker
 * fails the test file at once, with the reason.
 */
export const IN_CI = Boolean(process.env.CI);

/**
 * Runs `probe`; true when the service answers. When it does not: under CI, throws (the test
 * file fails); elsewhere, prints a banner on stderr and returns false (the caller skips).
 */
export async function serviceAvailable(service: string, address: string, probe: () => Promise<void>): Promise<boolean> {
  try {
    await probe();
    return true;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (IN_CI) {
      throw new Error(`${service} is required when CI is set, but ${address} is unreachable: ${reason}`, { cause: error });
    }
    const line = '!'.repeat(100);
    console.warn(
      `\n${line}\n!! SKIPPING the ${service} tests: ${address} is unreachable (${reason}).\n` +
        `!! They never skip under CI. Start ${service} locally to run them.\n${line}\n`,
    );
    return false;
  }
}
