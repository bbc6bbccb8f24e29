import { PRESENCE_TOPIC, presenceInboxTopic } from '../topics.js';

/**
 * The nodes that asked for this node's state (a `hello` or a `sync`) since it was last sent, and
 * where the next one goes. Each asker that has a presence topic of its own (`i: 1`) gets it there,
 * so a node's start costs the cluster one copy of each node's state, read by the new node alone.
 * It goes once on the shared topic instead when an asker has no topic of its own (a node of an
 * earlier version, or one its broker refused it), or when most of the other nodes asked at once
 * (they all lost track, e.g. after a broker outage): one message for all is then cheaper than a
 * copy each.
 */
export class StateRequests {
  private readonly askers = new Set<string>();
  private forAll = false;

  /** Records a request; true for the first since the last `take()` (the answer is to be scheduled). */
  add(asker: string, hasInbox: boolean): boolean {
    const first = this.askers.size === 0 && !this.forAll;
    if (hasInbox) this.askers.add(asker);
    else this.forAll = true;
    return first;
  }

  /** The topics the state goes to now, given how many other nodes this node knows; forgets the requests. */
  take(knownNodes: number): string[] {
    const askers = [...this.askers];
    const forAll = this.forAll || (askers.length >= 2 && askers.length * 2 > knownNodes);
    this.askers.clear();
    this.forAll = false;
    return forAll ? [PRESENCE_TOPIC] : askers.map(presenceInboxTopic);
  }
}
