// Progressive enhancement only: every page works without it.
// - forms with data-confirm ask before they are sent (deleting a key or a guardrail);
// - the new key's Copy button copies it to the clipboard.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy-from]")) {
    const source = document.getElementById(button.getAttribute("data-copy-from"));
    if (!source || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch (_) {
        button.textContent = "Copy failed: select the key and copy it";
      }
    });
  }
});
