// The phone's keyed lists: views/keyed.ts's, keeping a view object (its element and the parts
// `update` sets) per id rather than a bare element.

import { KeyedList as ElementList } from "../views/keyed";

export interface Keyed<T, V extends { el: HTMLElement }> {
  /** Makes the view of a new id. */
  make(item: T): V;
  /** Brings a view up to date (called on every render, so keep it cheap: setText/setAttr). */
  update(view: V, item: T): void;
  /** Called when an id leaves the list, after its element was removed. */
  drop?(view: V): void;
}

export class KeyedList<T, V extends { el: HTMLElement }> {
  readonly views = new Map<string, V>();
  readonly #list: ElementList<T, HTMLElement>;

  constructor(parent: HTMLElement, key: (item: T) => string, spec: Keyed<T, V>) {
    this.#list = new ElementList<T, HTMLElement>(parent, key, {
      create: (item, id) => {
        const view = spec.make(item);
        this.views.set(id, view);
        return view.el;
      },
      update: (_el, item, id) => spec.update(this.views.get(id)!, item),
      remove: (_el, id) => {
        const view = this.views.get(id);
        this.views.delete(id);
        if (view) spec.drop?.(view);
      },
    });
  }

  /** Shows `items` in this order. */
  render(items: readonly T[]): void {
    this.#list.reconcile(items);
  }
}
