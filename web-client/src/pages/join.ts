// `/` and `/j/<code>`: join a lab with its code and a display name; sign in as facilitator.

import { api, ApiError } from "../api";
import { h, markReady, replace } from "../dom";
import type { PageContext } from "../main";
import { store } from "../store";
import { cleanJoinCodeInput, joinCodeProblem, nameProblem, normalizeFacilitatorKey, normalizeLabId } from "../validate";

/** Waiting time in words: "30 seconds", "2 minutes". */
function waitText(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minutes`;
}

/**
 * What to tell someone whose join failed. The server's error texts are written for logs and
 * developers; people get a sentence that says what to do.
 */
export function joinErrorText(e: unknown, code: string): string {
  if (!(e instanceof ApiError)) return "Something went wrong. Try again.";
  switch (e.status) {
    case 0:
      return e.message;
    case 404:
      return `No lab has the code ${code}. Check the code on the board (it can change), or ask the facilitator for it.`;
    case 429:
      return e.retryAfterSeconds
        ? `Too many tries. Wait ${waitText(e.retryAfterSeconds)}, then try again.`
        : "Too many tries. Wait a minute, then try again.";
    case 400:
      return "The code or the name was not accepted. Check both and try again.";
    default:
      return e.status >= 500
        ? "The Labboard server is busy or having trouble. Try again in a moment."
        : "You could not join. Check the code and try again.";
  }
}

/** What to tell a facilitator whose sign-in failed. */
export function facilitateErrorText(e: unknown): string {
  if (!(e instanceof ApiError)) return "Something went wrong. Try again.";
  if (e.status === 0) return e.message;
  if (e.status === 401 || e.status === 403 || e.status === 404) {
    return "That lab id and facilitator key do not match. Use the ones shown when the lab was created.";
  }
  return joinErrorText(e, "");
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
      showError(joinErrorText(e, joinCode));
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
      facError.textContent = facilitateErrorText(e);
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
        store.organizerToken() || store.recentLabs().some((l) => l.role === "facilitator")
          ? h("a", { href: "/labs", class: "btn btn-block", testid: "home-link" }, "Your labs")
          : null,
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
