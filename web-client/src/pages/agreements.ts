// The board's agreements and next steps panel: every agreement, grouped by the phase it was
// made in; the facilitator adds (text, optional owner; recorded in the current phase), edits and
// removes them. Writes go through debrief.ts (single keys inside the existing `agreements` map).

import { h, replace, setAttr, setText } from "../dom";
import { randomUuid } from "../ids";
import { addAgreement, agreementsByPhase, editAgreement, MAX_AGREEMENT_CHARS, MAX_OWNER_CHARS, removeAgreement } from "../debrief";
import { currentPhaseId, readPhases, type RunDoc } from "../labrun";
import type { LabConnection } from "../sync";

export interface AgreementsPanel {
  el: HTMLElement;
  render(doc: RunDoc): void;
}

export function agreementsPanel(conn: () => LabConnection | undefined, rerender: () => void): AgreementsPanel {
  // Once the lab has ended nobody writes, the facilitator included.
  const isFacilitator = () => conn()?.role === "facilitator" && !conn()?.ended;
  const list = h("div", { class: "agreements-groups" });
  const empty = h("p", { class: "agreements-empty" }, "No agreements yet.");
  const newText = h("input", {
    class: "input",
    testid: "agreement-new-text",
    maxlength: MAX_AGREEMENT_CHARS,
    placeholder: "What do we agree to try?",
    "aria-label": "New agreement",
    autocomplete: "off",
  });
  const newOwner = h("input", { class: "input agreements-owner-input", testid: "agreement-new-owner", maxlength: MAX_OWNER_CHARS, placeholder: "Who (optional)", "aria-label": "Owner", autocomplete: "off" });
  const add = h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "agreement-add" }, "Add");
  const formHint = h("p", { class: "agreements-hint" });
  const form = h("form", { class: "agreements-form", novalidate: true }, newText, h("div", { class: "agreements-form-row" }, newOwner, add), formHint);
  const el = h(
    "aside",
    { class: "agreements-panel", testid: "agreements-panel", "aria-labelledby": "agreements-heading", hidden: true },
    h("h2", { id: "agreements-heading", class: "agreements-heading" }, "Agreements & next steps"),
    empty,
    list,
    form,
  );

  // The editor's fields live across re-renders, so a remote change never eats what is typed.
  let editing: string | undefined;
  const editText = h("input", { class: "input", testid: "agreement-edit-text", maxlength: MAX_AGREEMENT_CHARS, "aria-label": "Agreement", autocomplete: "off" });
  const editOwner = h("input", { class: "input agreements-owner-input", testid: "agreement-edit-owner", maxlength: MAX_OWNER_CHARS, placeholder: "Who (optional)", "aria-label": "Owner", autocomplete: "off" });
  const save = h("button", { type: "submit", class: "btn btn-primary btn-small", testid: "agreement-save" }, "Save");
  const cancel = h("button", { type: "button", class: "btn btn-small", testid: "agreement-cancel" }, "Cancel");
  const editor = h("form", { class: "agreements-form agreement-editor", novalidate: true }, editText, h("div", { class: "agreements-form-row" }, editOwner, save, cancel));
  const stopEditing = () => {
    editing = undefined;
    rerender();
  };
  cancel.addEventListener("click", stopEditing);
  editor.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      stopEditing();
    }
  });
  editor.addEventListener("submit", (e) => {
    e.preventDefault();
    const id = editing;
    if (!id) return;
    conn()?.run((d, _now, scalar, updateText) => editAgreement(d, id, { text: editText.value, owner: editOwner.value }, scalar, updateText));
    stopEditing();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const ok = conn()?.run((d, now, scalar) => addAgreement(d, randomUuid(), { text: newText.value, owner: newOwner.value }, now, scalar));
    if (ok) {
      newText.value = "";
      newOwner.value = "";
      newText.focus();
    }
    rerender();
  });

  let key = "";
  const render = (doc: RunDoc) => {
    const phases = readPhases(doc);
    const labels = new Map(phases.map((p) => [p.id, p.label]));
    const current = currentPhaseId(doc);
    const groups = agreementsByPhase(doc, phases.map((p) => p.id));
    const facilitator = isFacilitator();
    const canAdd = facilitator && !!current && !!doc.agreements;
    form.hidden = !canAdd;
    setText(formHint, current ? `Recorded in ${labels.get(current) ?? current}` : "");
    empty.hidden = groups.length > 0;
    if (editing && !groups.some((g) => g.agreements.some((a) => a.id === editing))) editing = undefined;
    const k = JSON.stringify([groups, [...labels], editing, facilitator, current]);
    if (k === key) return;
    key = k;
    replace(
      list,
      ...groups.map((g) =>
        h(
          "section",
          { class: "agreements-group", "data-phase": g.phase },
          h("h3", { class: "agreements-phase" }, labels.get(g.phase) ?? (g.phase || "No phase"), g.phase === current ? h("span", { class: "agreements-now" }, " · now") : null),
          h(
            "ol",
            { class: "agreements-list" },
            ...g.agreements.map((a) => {
              const li = h("li", { class: "agreement-item", testid: "agreement-item", "data-agreement-id": a.id });
              if (a.id === editing) {
                li.append(editor);
                return li;
              }
              li.append(h("span", { class: "agreement-text", testid: "agreement-text" }, a.text));
              if (a.owner) li.append(h("span", { class: "agreement-owner", testid: "agreement-owner" }, a.owner));
              if (facilitator) {
                const edit = h("button", { type: "button", class: "btn-note", testid: "agreement-edit", "aria-label": `Edit: ${a.text}` }, "Edit");
                const remove = h("button", { type: "button", class: "btn-note btn-note-danger", testid: "agreement-remove", "aria-label": `Remove: ${a.text}` }, "Remove");
                edit.addEventListener("click", () => {
                  editing = a.id;
                  editText.value = a.text;
                  editOwner.value = a.owner;
                  rerender();
                  editText.focus();
                });
                // A first click arms it; a second within 4 s removes.
                let armedAt = 0;
                remove.addEventListener("click", () => {
                  if (Date.now() - armedAt > 4_000) {
                    armedAt = Date.now();
                    remove.textContent = "Click again to remove";
                    remove.classList.add("is-armed");
                    setTimeout(() => {
                      remove.textContent = "Remove";
                      remove.classList.remove("is-armed");
                    }, 4_000);
                    return;
                  }
                  conn()?.run((d) => removeAgreement(d, a.id));
                  rerender();
                });
                li.append(h("span", { class: "agreement-actions" }, edit, remove));
              }
              return li;
            }),
          ),
        ),
      ),
    );
    setAttr(el, "data-count", String(groups.reduce((n, g) => n + g.agreements.length, 0)));
  };

  return { el, render };
}
