import { errorMessage } from '../riverside.messages.js';
import { RiversideError } from './riverside.error.js';

/**
 * Thrown when a codec cannot encode an outgoing message (e.g. a BigInt or a circular object
 * for JSON). Nothing was written when it is thrown.
 * @publicApi
 */
export class EncodeError extends RiversideError {
  constructor(codecName: string, cause: unknown) {
    super(
      'RIVERSIDE_ERR_ENCODE',
      `${codecName} could not encode the message: ${errorMessage(cause)}. ` +
        'Send a value the codec supports, or a raw Frame.text()/Frame.binary().',
      { cause },
    );
  }
}
