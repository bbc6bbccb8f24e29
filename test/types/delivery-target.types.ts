// Compile-time behaviour of DeliveryTarget, checked by `npm run typecheck` (this file is in the
// root tsconfig's `include` and never runs): each `@ts-expect-error` line must stay an error,
// or the typecheck fails with "Unused '@ts-expect-error' directive".
import type { DeliveryTarget } from 'nestjs-riverside';

export const user: DeliveryTarget = { user: 'ann' };
export const numericUser: DeliveryTarget = { user: 42 };
export const session: DeliveryTarget = { session: ['ann', 'f3a9'] };
export const channel: DeliveryTarget = { channel: 'lobby' };

// @ts-expect-error a user and a channel: deliver once per target instead
export const userAndChannel: DeliveryTarget = { user: 'ann', channel: 'lobby' };
// @ts-expect-error a session and a user
export const sessionAndUser: DeliveryTarget = { session: ['ann', 'f3a9'], user: 'ann' };
// @ts-expect-error all three
export const everyone: DeliveryTarget = { user: 'ann', session: ['ann', 'f3a9'], channel: 'lobby' };
// @ts-expect-error no recipient at all
export const nobody: DeliveryTarget = {};
// @ts-expect-error a session is a [userId, sessionId] pair
export const halfSession: DeliveryTarget = { session: ['ann'] };
