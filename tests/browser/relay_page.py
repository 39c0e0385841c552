"""Driving Relay's page the way a person (or a screen reader) finds its parts: by role and name."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import Locator, Page, expect

# Installed in the page: records every aria-valuenow and every text-output
# length as they change, per prediction, so a test can check their history.
RECORDER = """
() => {
  window.relayHistory = { progress: {}, text: {} };
  const cardId = (node) => {
    const card = node.closest && node.closest('article');
    return card ? (card.dataset.predictionId || 'pending') : 'none';
  };
  const push = (bucket, id, value) => { (bucket[id] = bucket[id] || []).push(value); };
  new MutationObserver((records) => {
    for (const record of records) {
      const target = record.target.nodeType === 1 ? record.target : record.target.parentElement;
      if (!target) continue;
      if (record.type === 'attributes' && record.attributeName === 'aria-valuenow') {
        push(window.relayHistory.progress, cardId(target), Number(target.getAttribute('aria-valuenow')));
      }
      const text = target.closest && target.closest('.text-output');
      if (text && record.type !== 'attributes') {
        push(window.relayHistory.text, cardId(text), text.textContent.length);
      }
    }
  }).observe(document.body, {
    subtree: true, attributes: true, attributeFilter: ['aria-valuenow'],
    childList: true, characterData: true,
  });
}
"""


def open_relay(page: Page, url: str) -> None:
    page.goto(url + "/")
    expect(page.get_by_role("combobox", name="Model")).to_be_enabled()
    page.evaluate(RECORDER)


def fill_form(page: Page, model: str, prompt: str | None = None, fields: dict[str, Any] | None = None,
              extra: dict[str, Any] | None = None) -> None:
    page.get_by_role("combobox", name="Model").select_option(model)
    if prompt is not None:
        page.get_by_role("textbox", name="Prompt").fill(prompt)
    for label, value in (fields or {}).items():
        # Labels are the schema's titles ("Max Tokens"): matched whole, in any case.
        field = page.get_by_label(re.compile(f"^{re.escape(label)}$", re.IGNORECASE))
        if not field.is_visible():  # optional inputs are folded under "More options"
            page.locator("#model-inputs details.more-options > summary").click()
        field.fill(str(value))
    extra_box = page.get_by_role("textbox", name="Extra input (JSON)")
    if not extra_box.is_visible():
        page.get_by_text("More input").click()
    extra_box.fill(json.dumps(extra) if extra else "")


def generate(page: Page) -> None:
    button = page.get_by_role("button", name="Generate")
    expect(button).to_be_enabled()
    button.click()


def start(page: Page, model: str, prompt: str, fields: dict[str, Any] | None = None,
          extra: dict[str, Any] | None = None) -> Locator:
    """Start a prediction from the form and return its card, pinned by prediction id."""
    before = page.get_by_role("article").count()
    fill_form(page, model, prompt, fields, extra)
    generate(page)
    return newest_card(page, before + 1)


def newest_card(page: Page, expected_count: int) -> Locator:
    """The newest card (cards come newest first), once there are `expected_count` of them."""
    expect(page.get_by_role("article")).to_have_count(expected_count)
    newest = page.get_by_role("article").first
    expect(newest).to_have_attribute("data-prediction-id", re.compile(r"."))
    return page.locator(f'article[data-prediction-id="{prediction_id(newest)}"]')


def card_status(card: Locator) -> Locator:
    return card.get_by_role("status")


def progress_bar(card: Locator) -> Locator:
    return card.get_by_role("progressbar")


def progress_now(card: Locator) -> float:
    value = progress_bar(card).get_attribute("aria-valuenow")
    return float(value) if value is not None else 0.0


def prediction_id(card: Locator) -> str:
    return card.evaluate("(node) => node.dataset.predictionId")


def history(page: Page, kind: str, card: Locator) -> list[float]:
    return page.evaluate("([kind, id]) => (window.relayHistory[kind][id] || [])", [kind, prediction_id(card)])


def connection_badge(page: Page) -> Locator:
    return page.locator("#connection-badge")
