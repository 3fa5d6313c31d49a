// `/` and `/j/<code>`: join a lab with its code and a display name; sign in as facilitator.

import { api, ApiError } from "../api";
import { h, markReady, replace } from "../dom";
import type { PageContext } from "../main";
import { store } from "../store";
import { cleanJoinCodeInput, joinCodeProblem, nameProblem, normalizeFacilitatorKey, normalizeLabId } from "../validate";

function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 429 && e.retryAfterSeconds && !/\d/.test(e.message)) {
      return `${e.message} (wait ${e.retryAfterSeconds} s)`;
    }
    return e.message;
  }
  return "Something went wrong. Try again.";
}

export function mountJoin(ctx: PageContext, code?: string): void {
  document.title = "Join a lab · Labboard";
  const flash = store.takeFlash();
  const initialCode = cleanJoinCodeInput(code ?? "");

  const message = h("p", { class: "notice", role: "status", testid: "join-message", hidden: !flash }, flash ?? "");
  const error = h("p", { class: "error", role: "alert", testid: "join-error", hidden: true });
  const codeInput = h("input", {
    id: "join-code",
    testid: "join-code",
    class: "input input-code",
    name: "code",
    value: initialCode,
    inputmode: "text",
    autocomplete: "off",
    autocapitalize: "characters",
    spellcheck: "false",
    maxlength: 9,
    placeholder: "ABC234",
    "aria-describedby": "join-code-hint",
    required: true,
  });
  const nameInput = h("input", {
    id: "join-name",
    testid: "join-name",
    class: "input",
    name: "name",
    value: store.lastName(),
    autocomplete: "nickname",
    maxlength: 60,
    placeholder: "e.g. Ana R.",
    "aria-describedby": "join-name-hint",
    required: true,
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block", testid: "join-submit" }, "Join the lab");

  codeInput.addEventListener("input", () => {
    const clean = cleanJoinCodeInput(codeInput.value);
    if (clean !== codeInput.value) {
      codeInput.value = clean;
    }
  });

  const showError = (text: string | undefined) => {
    error.textContent = text ?? "";
    error.hidden = !text;
  };

  const form = h(
    "form",
    { class: "card stack", novalidate: true, "aria-labelledby": "join-heading" },
    h("h2", { id: "join-heading", class: "card-title" }, "Join a lab"),
    h(
      "div",
      { class: "field" },
      h("label", { for: "join-code" }, "Join code"),
      codeInput,
      h("p", { id: "join-code-hint", class: "hint" }, "6 characters, shown on the board."),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "join-name" }, "Your name"),
      nameInput,
      h("p", { id: "join-name-hint", class: "hint" }, "Shown with your notes. Your own name, not a child's."),
    ),
    error,
    submit,
  );

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const problem = joinCodeProblem(codeInput.value) ?? nameProblem(nameInput.value);
    if (problem) {
      showError(problem);
      (joinCodeProblem(codeInput.value) ? codeInput : nameInput).focus();
      return;
    }
    showError(undefined);
    submit.disabled = true;
    submit.textContent = "Joining…";
    const joinCode = cleanJoinCodeInput(codeInput.value);
    const name = nameInput.value.trim();
    try {
      const res = await api.join(joinCode, name, store.deviceKey());
      store.setLastName(name);
      store.saveAccess(res, { joinCode: res.joinCode ?? joinCode });
      ctx.navigate(`/lab/${res.labId}`);
    } catch (e) {
      showError(errorText(e));
      submit.disabled = false;
      submit.textContent = "Join the lab";
    }
  });

  // Sign in as the facilitator of an existing lab.
  const facError = h("p", { class: "error", role: "alert", testid: "facilitate-error", hidden: true });
  const labIdInput = h("input", {
    id: "fac-lab",
    testid: "facilitate-lab-id",
    class: "input",
    autocomplete: "off",
    autocapitalize: "none",
    spellcheck: "false",
    placeholder: "e.g. 3vonzeprz5c5",
    required: true,
  });
  const keyInput = h("input", {
    id: "fac-key",
    testid: "facilitate-key",
    class: "input input-mono",
    autocomplete: "off",
    autocapitalize: "characters",
    spellcheck: "false",
    placeholder: "XXXX-XXXX-XXXX-XXXX",
    required: true,
  });
  const facSubmit = h("button", { type: "submit", class: "btn btn-block", testid: "facilitate-submit" }, "Open the board");
  const facForm = h(
    "form",
    { class: "stack", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "fac-lab" }, "Lab id"), labIdInput),
    h("div", { class: "field" }, h("label", { for: "fac-key" }, "Facilitator key"), keyInput),
    facError,
    facSubmit,
  );
  facForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const labId = normalizeLabId(labIdInput.value);
    const key = normalizeFacilitatorKey(keyInput.value);
    if (!labId || !key) {
      facError.textContent = "Type the lab id and the facilitator key you saved when the lab was created.";
      facError.hidden = false;
      return;
    }
    facError.hidden = true;
    facSubmit.disabled = true;
    try {
      const res = await api.facilitate(labId, key, store.lastName() || undefined, store.deviceKey());
      store.saveAccess(res, { facilitatorKey: key });
      ctx.navigate(`/lab/${res.labId}/board`);
    } catch (e) {
      facError.textContent = errorText(e);
      facError.hidden = false;
      facSubmit.disabled = false;
    }
  });

  const recent = store.recentLabs().filter((l) => l.token);
  const recentList =
    recent.length > 0
      ? h(
          "section",
          { class: "card stack", "aria-labelledby": "recent-heading" },
          h("h2", { id: "recent-heading", class: "card-title" }, "Continue"),
          h(
            "ul",
            { class: "link-list" },
            ...recent.slice(0, 5).map((l) =>
              h(
                "li",
                {},
                h("a", { href: `/lab/${l.labId}`, class: "btn btn-block btn-link-card" }, l.title || l.labId),
                l.role === "facilitator" ? h("a", { href: `/lab/${l.labId}/board`, class: "small-link" }, "Projector board") : null,
              ),
            ),
          ),
        )
      : null;

  replace(
    ctx.root,
    h(
      "main",
      { class: "page page-narrow" },
      h("header", { class: "brand" }, h("h1", {}, "Labboard"), h("p", { class: "tagline" }, "Observe together. Debrief together.")),
      message,
      recentList,
      form,
      h(
        "section",
        { class: "card stack facilitator" },
        h("h2", { class: "card-title" }, "Facilitators"),
        h("a", { href: "/new", class: "btn btn-block", testid: "facilitator-link" }, "I'm the facilitator"),
        h(
          "p",
          { class: "hint" },
          "To create a lab, open the link the Labboard server printed when it started (it ends in ",
          h("code", {}, "/new#organizer=…"),
          ").",
        ),
        h(
          "details",
          {},
          h("summary", {}, "Open the board of an existing lab"),
          h("p", { class: "hint" }, "With the lab id and the facilitator key you saved when you created it."),
          facForm,
        ),
      ),
    ),
  );

  if (initialCode && !joinCodeProblem(initialCode)) nameInput.focus();
  markReady();
}
