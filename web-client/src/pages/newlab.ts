// `/new#organizer=<token>`: create a lab, then show its join code, join link and facilitator key.

import { api, ApiError, type CreatedLab } from "../api";
import { copyText, h, markReady, replace } from "../dom";
import type { PageContext } from "../main";
import { organizerFromHash } from "../routes";
import { store } from "../store";
import { labFormProblem } from "../validate";

function today(): string {
  const d = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function copyButton(label: string, text: string, testid: string, target: Element): HTMLButtonElement {
  const btn = h("button", { type: "button", class: "btn btn-small", testid }, label);
  btn.addEventListener("click", async () => {
    const ok = await copyText(text, target);
    btn.textContent = ok ? "Copied ✓" : "Selected: copy it now";
    setTimeout(() => (btn.textContent = label), 2500);
  });
  return btn;
}

export function mountNewLab(ctx: PageContext): void {
  document.title = "New lab · Labboard";
  const fromHash = organizerFromHash(location.hash);
  if (fromHash) {
    store.setOrganizerToken(fromHash);
    // Keep the token out of the address bar, the history and screenshots of the screen.
    history.replaceState(history.state, "", location.pathname + location.search);
  }
  const organizer = store.organizerToken();
  const main = h("main", { class: "page page-narrow" });
  replace(ctx.root, main);

  if (!organizer) {
    replace(
      main,
      h("header", { class: "brand" }, h("h1", {}, "Create a lab")),
      h(
        "section",
        { class: "card stack" },
        h("p", {}, "To create a lab, open the facilitator link that the Labboard server printed when it started. It looks like:"),
        h("p", {}, h("code", { class: "wrap" }, `${location.origin}/new#organizer=…`)),
        h("p", {}, "Ask whoever started the server for it. Open it once on this device; it is remembered here."),
        h("p", {}, h("a", { href: "/" }, "← Join a lab instead")),
      ),
    );
    markReady();
    return;
  }

  const showForm = () => {
    const error = h("p", { class: "error", role: "alert", testid: "new-error", hidden: true });
    const field = (id: string, label: string, input: HTMLInputElement, hint?: string) =>
      h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("p", { class: "hint" }, hint) : null);
    const title = h("input", { id: "new-title", testid: "new-title", class: "input", maxlength: 120, required: true, placeholder: "e.g. Making ten" });
    const school = h("input", { id: "new-school", testid: "new-school", class: "input", maxlength: 120, placeholder: "e.g. Hillside Elementary" });
    const grade = h("input", { id: "new-grade", testid: "new-grade", class: "input", maxlength: 120, placeholder: "e.g. 2" });
    const date = h("input", { id: "new-date", testid: "new-date", class: "input", type: "date", value: today() });
    const submit = h("button", { type: "submit", class: "btn btn-primary btn-block", testid: "new-submit" }, "Create the lab");
    const form = h(
      "form",
      { class: "card stack", novalidate: true },
      field("new-title", "Title (required)", title),
      field("new-school", "School", school),
      field("new-grade", "Grade", grade),
      field("new-date", "Date", date),
      error,
      submit,
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const values = { title: title.value.trim(), school: school.value.trim(), grade: grade.value.trim(), date: date.value.trim() };
      const problem = labFormProblem(values);
      if (problem) {
        error.textContent = problem;
        error.hidden = false;
        return;
      }
      error.hidden = true;
      submit.disabled = true;
      submit.textContent = "Creating…";
      try {
        const created = await api.createLab(organizer, values);
        await showCreated(created, values.title);
      } catch (e) {
        let text = e instanceof ApiError ? e.message : "Something went wrong. Try again.";
        if (e instanceof ApiError && e.status === 401) {
          store.clearOrganizerToken();
          text = "The server did not accept the organizer link. Open the facilitator link the server printed again.";
        }
        error.textContent = text;
        error.hidden = false;
        submit.disabled = false;
        submit.textContent = "Create the lab";
      }
    });

    const mine = store.recentLabs().filter((l) => l.role === "facilitator");
    replace(
      main,
      h("header", { class: "brand" }, h("h1", {}, "Create a lab"), h("p", { class: "tagline" }, "You get a join code for the observers and a board for the projector.")),
      form,
      h("a", { href: "/labs", class: "btn btn-block", testid: "home-link" }, "Your labs"),
      mine.length > 0
        ? h(
            "section",
            { class: "card stack" },
            h("h2", { class: "card-title" }, "Your labs on this device"),
            h(
              "ul",
              { class: "link-list" },
              ...mine.slice(0, 8).map((l) => h("li", {}, h("a", { href: `/lab/${l.labId}/board`, class: "btn btn-block btn-link-card" }, `${l.title || l.labId} — board`))),
            ),
          )
        : null,
    );
    title.focus();
  };

  const showCreated = async (created: CreatedLab, title: string) => {
    // Sign in as this lab's facilitator now, so the board link just works.
    let signInProblem: string | undefined;
    try {
      const access = await api.facilitate(created.labId, created.facilitatorKey, store.lastName() || undefined, store.deviceKey());
      store.saveAccess(access, { joinCode: created.joinCode, joinUrl: created.joinUrl, facilitatorKey: created.facilitatorKey, title });
    } catch (e) {
      signInProblem = e instanceof ApiError ? e.message : "unknown error";
      store.putLab({
        labId: created.labId,
        docUrl: created.docUrl,
        title,
        role: "facilitator",
        name: store.lastName() || "Facilitator",
        joinCode: created.joinCode,
        joinUrl: created.joinUrl,
        facilitatorKey: created.facilitatorKey,
        updatedAt: Date.now(),
      });
    }
    const urlLink = h("a", { href: created.joinUrl, class: "wrap mono", testid: "new-join-url" }, created.joinUrl);
    const keyText = h("p", { class: "key-big mono", testid: "new-facilitator-key" }, created.facilitatorKey);
    replace(
      main,
      h("header", { class: "brand" }, h("h1", {}, "Lab created"), h("p", { class: "tagline" }, title)),
      h(
        "section",
        { class: "card stack center" },
        h("p", { class: "label" }, "Join code"),
        h("p", { class: "join-code-big", testid: "new-join-code" }, created.joinCode),
        h("p", { class: "hint" }, "Observers open the join link (or scan the QR code on the board) and type their name."),
        urlLink,
        copyButton("Copy join link", created.joinUrl, "copy-join-url", urlLink),
      ),
      h(
        "section",
        { class: "card stack warn-card", role: "note" },
        h("h2", { class: "card-title" }, "Save the facilitator key now"),
        h("p", {}, "It is shown only once. With it you can open this lab's board on another device or hand the lab to a colleague."),
        keyText,
        h("p", { class: "hint" }, "Lab id: ", h("code", { testid: "new-lab-id" }, created.labId)),
        copyButton("Copy the key", created.facilitatorKey, "copy-facilitator-key", keyText),
      ),
      signInProblem ? h("p", { class: "error", role: "alert" }, `Could not sign you in automatically (${signInProblem}). Use the key on the start page.`) : null,
      h("a", { href: `/lab/${created.labId}/board`, class: "btn btn-primary btn-block", testid: "new-board-link" }, "Open the projector board"),
      h("a", { href: `/lab/${created.labId}`, class: "btn btn-block" }, "Open the observer page"),
      h("a", { href: "/labs", class: "btn btn-block" }, "Your labs"),
      (() => {
        const again = h("button", { type: "button", class: "btn-text" }, "Create another lab");
        again.addEventListener("click", showForm);
        return again;
      })(),
    );
  };

  showForm();
  markReady();
}
