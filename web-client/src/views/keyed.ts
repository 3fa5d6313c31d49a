// The one way views render lists, on the phone and the board: keyed. Each item has an element,
// made once for its key and updated in place; elements move only when the order changes, and go
// only when their item does. So a card under a finger, a drag or a focused button is never rebuilt.

export interface Keyed<T, E extends Element> {
  /** Makes the element of a new key. */
  create(item: T, key: string): E;
  /** Brings an element up to date with its item (called on every reconcile, also after create). */
  update(el: E, item: T, key: string): void;
  /** Called once when a key's element leaves (after it was removed from the page). */
  remove?(el: E, key: string): void;
}

/** A keyed list of elements inside `parent`, in the order of the items given to `reconcile`. */
export class KeyedList<T, E extends Element> {
  readonly #parent: Element;
  readonly #key: (item: T) => string;
  readonly #spec: Keyed<T, E>;
  readonly #els = new Map<string, E>();

  constructor(parent: Element, key: (item: T) => string, spec: Keyed<T, E>) {
    this.#parent = parent;
    this.#key = key;
    this.#spec = spec;
  }

  /** Puts `items` in `parent`, in order: keeps, updates and moves existing elements. */
  reconcile(items: readonly T[]): void {
    const seen = new Set<string>();
    let prev: Element | null = null;
    for (const item of items) {
      const key = this.#key(item);
      if (seen.has(key)) continue;
      seen.add(key);
      let el = this.#els.get(key);
      if (!el) {
        el = this.#spec.create(item, key);
        this.#els.set(key, el);
      }
      this.#spec.update(el, item, key);
      const want: Element | null = prev ? prev.nextElementSibling : this.#parent.firstElementChild;
      if (want !== el) this.#parent.insertBefore(el, want);
      prev = el;
    }
    for (const [key, el] of this.#els) {
      if (seen.has(key)) continue;
      // An element another list has taken over (a card moved between lists) stays where it is.
      if (el.parentNode === this.#parent) el.remove();
      this.#els.delete(key);
      this.#spec.remove?.(el, key);
    }
  }

  get(key: string): E | undefined {
    return this.#els.get(key);
  }

  get size(): number {
    return this.#els.size;
  }

  values(): IterableIterator<E> {
    return this.#els.values();
  }
}
