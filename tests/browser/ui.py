"""Page helpers for Prefect 3.9.1's UI (the V2, React UI that ``/`` redirects to), for Selenium.

Every lookup waits explicitly (``WebDriverWait``) for what it reads; nothing sleeps. The
selectors are the ones the UI renders (checked by tests/browser/test_prefect_ui.py):

- custom run form ``/v2/deployments/deployment/<id>/run[?parameters=<JSON>]``: a field is the
  ``div.group`` holding ``label[data-slot=label]`` whose text is ``<name>`` or
  ``<name> (Optional)``; ``label[for]`` is the id of its control; its description (from the
  flow's docstring) is the ``<p>`` after the label; its errors are ``p.text-destructive``
  in the group. A date is a popover button ("Pick a date") whose popover has a text input
  ``Date (yyyy-MM-dd)``; an integer an ``input[type=number]`` with the schema's min/max (the
  browser's own validation then blocks the submit: nothing in the page but the input's
  ``validationMessage``); an enum a ``button[aria-haspopup=listbox]`` with
  ``[role=option]``s; a bool a ``button[role=switch]``; ``X | None`` two tabs
  (``[role=tab]`` "list"/"str" and "None"; "None" selected shows 'Property is type "None"').
- toasts: ``li[data-sonner-toast][data-type=error|success]``; after a valid submit the UI goes to
  ``/v2/deployments/deployment/<id>?tab=Runs`` and the success toast "<run name> scheduled to
  start now" links "View run" to ``/v2/runs/flow-run/<run id>``.
- flow run page ``/v2/runs/flow-run/<id>?tab=Logs|Details|Artifacts|...``: state badge
  ``nav[data-slot=breadcrumb] + div span[data-slot=badge]``; the state message only in the
  Details tab (``dt`` "State Message", its ``dd``) and in the final log line; the Artifacts
  tab lists cards (``[data-testid=flow-run-artifacts-grid] a``, linking to
  ``/v2/artifacts/artifact/<id>``), never the artifacts' content.
- artifact page ``/v2/artifacts/artifact/<id>``: a markdown artifact rendered in
  ``[data-testid=markdown-display]`` (V1: ``article.artifact-data-markdown``; its
  description is a ``.markdown-renderer`` too).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from selenium.common.exceptions import (
    ElementClickInterceptedException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

T = TypeVar("T")
TIMEOUT = 20.0  # seconds; a page of the UI on a loaded 2-core machine takes 1-3 s
RESUBMIT_AFTER = 8.0  # seconds after a submit that showed nothing at all, it is sent again
V2 = "/v2"
MARKDOWN = "[data-testid='markdown-display'], article.artifact-data-markdown"  # V2, V1
RUN_ID = re.compile(r"/runs/flow-run/([0-9a-f-]{36})")


# --- waiting


def wait_for(
    driver: WebDriver,
    check: Callable[[WebDriver], T | None],
    what: str,
    timeout: float = TIMEOUT,
    seen: Callable[[], object] | None = None,
) -> T:
    """Wait until ``check`` returns something truthy (returned); an element that is missing or
    replaced meanwhile counts as not yet. Fails naming ``what``, the page's URL and what
    ``seen`` returns (what was there instead)."""
    waiter = WebDriverWait(
        driver,
        timeout,
        poll_frequency=0.1,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )
    try:
        return waiter.until(check)  # type: ignore[arg-type]
    except TimeoutException:
        found = f"; found {seen()!r}" if seen else ""
        raise TimeoutException(
            f"gave up after {timeout:.0f} s waiting for {what} on {driver.current_url}{found}"
            + console_tail(driver)
        ) from None


def console_tail(driver: WebDriver, lines: int = 15) -> str:
    """The page's last console messages (warnings and errors: a failed request, a script
    error), as lines to add to a failure; empty when there are none or the driver keeps no log.
    Reading the log empties it."""
    try:
        entries = driver.get_log("browser")
    except Exception:  # a driver without the log (not Chromium's, or logging off)
        return ""
    kept = [e for e in entries if e.get("level") in ("WARNING", "SEVERE")][-lines:]
    return "".join(f"\n  console {e['level']}: {e['message'][:300]}" for e in kept)


def find(driver: WebDriver, by: str, selector: str, what: str = "") -> WebElement:
    """The first element of the page matching (waiting for it to be there)."""
    return wait_for(driver, lambda d: d.find_element(by, selector), what or selector)


def visible_text(driver: WebDriver, element: WebElement | None = None) -> str:
    """``innerText`` of an element (of the page's body by default)."""
    target = element or driver.find_element(By.TAG_NAME, "body")
    return str(driver.execute_script("return arguments[0].innerText", target))


def save_screenshot(driver: WebDriver, path: Path, full_page: bool = True) -> Path:
    """A PNG of the page; ``full_page`` grows the window to the page's height for the shot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = driver.get_window_size()
    if full_page:
        height = driver.execute_script(
            "return Math.max(document.body.scrollHeight,"
            " ...[...document.querySelectorAll('main, main *')].map(e => e.scrollHeight))"
        )
        driver.set_window_size(size["width"], min(max(int(height) + 300, size["height"]), 4000))
    try:
        driver.save_screenshot(str(path))
    finally:
        if full_page:
            driver.set_window_size(size["width"], size["height"])
    return path


def open_page(driver: WebDriver, ui_url: str, path: str) -> None:
    """Load ``ui_url + path`` and wait until the UI's layout has rendered."""
    driver.get(ui_url.rstrip("/") + path)
    find(driver, By.CSS_SELECTOR, "main, .app-router-view__view", "the UI's layout (V2, V1)")


# --- custom run form


def custom_run_path(deployment_id: str, parameters: Mapping[str, Any] | None = None) -> str:
    """The form's URL path; ``parameters`` (JSON) prefill it, dates as ``YYYY-MM-DD``."""
    path = f"{V2}/deployments/deployment/{deployment_id}/run"
    if parameters is not None:
        path += "?parameters=" + quote(json.dumps(dict(parameters), default=str))
    return path


def open_custom_run(
    driver: WebDriver,
    ui_url: str,
    deployment_id: str,
    parameters: Mapping[str, Any] | None = None,
    via_menu: bool = False,
) -> None:
    """Open the deployment's custom run form: directly by its URL (prefilled with
    ``parameters``), or ``via_menu`` from the deployment page, Run > Custom run."""
    if via_menu:
        open_page(driver, ui_url, f"{V2}/deployments/deployment/{deployment_id}")
        find(
            driver,
            By.XPATH,
            "//button[@data-slot='dropdown-menu-trigger'][normalize-space()='Run']",
            "the Run button",
        ).click()
        find(
            driver,
            By.XPATH,
            "//*[@role='menuitem'][normalize-space()='Custom run']",
            "Run > Custom run",
        ).click()
    else:
        open_page(driver, ui_url, custom_run_path(deployment_id, parameters))
    # the Submit button renders before the parameters' form (fetched with the deployment's
    # schema): a click before the fields are there sent nothing at all, once, under load; and
    # the form is used once the same form element has stood for half a second (a submit whose
    # form is replaced meanwhile shows neither errors nor a toast)
    wait_for(
        driver,
        lambda d: "/run" in d.current_url and _submit_button(d) and _labels_now(d),
        "the custom run form and its fields",
    )
    stable_element(driver, "//form[.//label[@data-slot='label']]", "the custom run form")


def stable_element(driver: WebDriver, xpath: str, what: str, hold: float = 0.5) -> WebElement:
    """The element at ``xpath`` once the page has kept the same one for ``hold`` seconds."""
    since: dict[str, float] = {}

    def check(d: WebDriver) -> WebElement | None:
        element = d.find_element(By.XPATH, xpath)
        first = since.setdefault(element.id, time.monotonic())
        return element if time.monotonic() - first >= hold else None

    return wait_for(driver, check, f"{what} to stay the same for {hold} s")


def _labels_now(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.XPATH, "//form//label[@data-slot='label']")


GROUP = "./ancestor::div[contains(concat(' ', normalize-space(@class), ' '), ' group ')][1]"


def _label_now(driver: WebDriver, name: str) -> WebElement:
    xpath = (
        f"//form//label[@data-slot='label'][normalize-space()='{name}' "
        f"or normalize-space()='{name} (Optional)']"
    )
    return driver.find_element(By.XPATH, xpath)


def _group_now(driver: WebDriver, name: str) -> WebElement:
    return _label_now(driver, name).find_element(By.XPATH, GROUP)


def _control_now(driver: WebDriver, name: str) -> WebElement:
    return driver.find_element(By.ID, _label_now(driver, name).get_attribute("for") or "")


def _do(
    driver: WebDriver, locate: Callable[[WebDriver], WebElement], action: str, *keys: str
) -> None:
    """``click`` or ``send_keys`` on what ``locate`` finds, finding it again when the UI
    re-rendered it meanwhile (a stale element refuses the command before doing anything)."""

    def attempt(d: WebDriver) -> bool:
        element = locate(d)
        element.click() if action == "click" else element.send_keys(*keys)
        return True

    wait_for(driver, attempt, f"{action} {keys or ''}")


def field_label(driver: WebDriver, name: str) -> WebElement:
    """The ``label`` of parameter ``name`` in the form ("name" or "name (Optional)")."""
    return wait_for(driver, lambda d: _label_now(d, name), f"the form field {name!r}")


def field_group(driver: WebDriver, name: str) -> WebElement:
    """The block of parameter ``name``: label, description, control(s), errors."""
    return wait_for(driver, lambda d: _group_now(d, name), f"the form field {name!r}")


def field_control(driver: WebDriver, name: str) -> WebElement:
    """The element the field's label points at: input, date/enum button, switch, editor box."""
    return wait_for(driver, lambda d: _control_now(d, name), f"the control of {name!r}")


def field_description(driver: WebDriver, name: str) -> str:
    """The help text under the field's label ('' when none)."""
    found = field_label(driver, name).find_elements(By.XPATH, "./following-sibling::p")
    return found[0].text if found else ""


def union_tabs(driver: WebDriver, name: str) -> dict[str, bool]:
    """For an ``X | None`` field: its tabs ("list"/"str", "None") -> selected."""

    def tabs(d: WebDriver) -> dict[str, bool]:
        found = _group_now(d, name).find_elements(By.CSS_SELECTOR, "[role='tab']")
        return {t.text: t.get_attribute("aria-selected") == "true" for t in found}

    return wait_for(driver, lambda d: [tabs(d)], f"the tabs of {name!r}")[0]  # [{}] is truthy


def choose_union_tab(driver: WebDriver, name: str, tab: str) -> None:
    """Select the tab ``tab`` ("list", "str", "None", ...) of an ``X | None`` field."""
    xpath = f".//button[@role='tab'][normalize-space()='{tab}']"

    def button(d: WebDriver) -> WebElement:
        return _group_now(d, name).find_element(By.XPATH, xpath)

    if button(driver).get_attribute("aria-selected") != "true":
        _do(driver, button, "click")
    wait_for(driver, lambda d: button(d).get_attribute("aria-selected") == "true", f"{name}: {tab}")


def date_label(day: dt.date) -> str:
    """How the date button shows a date: 'January 5th, 2024'."""
    n = day.day
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{day:%B} {n}{suffix}, {day.year}"


DATE_BOX = "input[aria-label='Date (yyyy-MM-dd)']"


def fill_date(driver: WebDriver, name: str, day: dt.date) -> None:
    """Open the field's date popover, type the date into its ``Date (yyyy-MM-dd)`` input (more
    reliable than paging the calendar) and close it once the button shows the date."""
    last_click = [0.0]

    def date_box(d: WebDriver) -> WebElement | None:
        trigger = _control_now(d, name)
        if trigger.get_attribute("aria-expanded") == "true":  # this field's popover
            popover = d.find_element(By.ID, trigger.get_attribute("aria-controls") or "")
            return popover.find_element(By.CSS_SELECTOR, DATE_BOX)
        if time.monotonic() - last_click[0] > 2:  # a click lost to a re-render: again
            last_click[0] = time.monotonic()
            trigger.click()
        return None

    box = wait_for(driver, date_box, f"the date popover of {name!r}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(day.isoformat())
    shown = date_label(day)
    wait_for(driver, lambda d: _control_now(d, name).text == shown, f"{name} to show {shown}")
    box.send_keys(Keys.ESCAPE)
    wait_for(
        driver,
        lambda d: _control_now(d, name).get_attribute("aria-expanded") == "false",
        "the date popover to close",
    )


def fill_text(driver: WebDriver, name: str, value: str) -> None:
    """Type into a text or number input (replacing its value); a ``str | None`` field is
    switched to its "str" tab first."""
    if "str" in union_tabs(driver, name):
        choose_union_tab(driver, name, "str")

        def box(d: WebDriver) -> WebElement:
            return _group_now(d, name).find_element(By.CSS_SELECTOR, "textarea, input")
    else:

        def box(d: WebDriver) -> WebElement:
            return _control_now(d, name)

    # Typed again (all of it replaced) when the value has not taken after a third of the wait:
    # once in about eight runs on this machine the value never took (the keys lost in a re-render)
    for attempt in range(3):
        _do(driver, box, "send_keys", Keys.CONTROL, "a")
        _do(driver, box, "send_keys", Keys.DELETE)
        _do(driver, box, "send_keys", value)
        try:
            wait_for(
                driver,
                lambda d: box(d).get_attribute("value") == value,
                f"{name} = {value!r}",
                timeout=TIMEOUT / 3,
                seen=lambda: box(driver).get_attribute("value"),
            )
            return
        except TimeoutException:
            if attempt == 2:
                raise


def fill_integer(driver: WebDriver, name: str, value: int) -> None:
    """Type an integer into the field's ``input[type=number]``."""
    fill_text(driver, name, str(value))


def fill_list(driver: WebDriver, name: str, values: Sequence[str]) -> None:
    """A ``list[str] | None`` field: its "list" tab, then one "Add item" and text per value."""
    if "list" in union_tabs(driver, name):
        choose_union_tab(driver, name, "list")

    def add(d: WebDriver) -> WebElement:
        return _group_now(d, name).find_element(By.XPATH, ".//button[normalize-space()='Add item']")

    for i, value in enumerate(values):
        _do(driver, add, "click")
        _do(driver, _nth_item(name, i), "send_keys", value)
        wait_for(
            driver, lambda d, i=i, v=value: _nth_item(name, i)(d).get_attribute("value") == v, value
        )


def _nth_item(name: str, i: int) -> Callable[[WebDriver], WebElement]:
    def locate(d: WebDriver) -> WebElement:
        return _group_now(d, name).find_elements(By.TAG_NAME, "textarea")[i]

    return locate


def set_switch(driver: WebDriver, name: str, value: bool) -> None:
    """Turn a boolean field's switch on or off."""
    if (field_control(driver, name).get_attribute("aria-checked") == "true") != value:
        _do(driver, lambda d: _control_now(d, name), "click")
    want = "true" if value else "false"
    wait_for(
        driver,
        lambda d: _control_now(d, name).get_attribute("aria-checked") == want,
        f"{name} = {value}",
    )


def choose_option(driver: WebDriver, name: str, option: str) -> None:
    """Pick ``option`` of an enum (``Literal``) field's list box."""
    _do(driver, lambda d: _control_now(d, name), "click")
    xpath = f"//*[@role='option'][normalize-space()='{option}']"
    _do(driver, lambda d: d.find_element(By.XPATH, xpath), "click")
    wait_for(driver, lambda d: _control_now(d, name).text == option, f"{name} = {option!r}")


def use_json_input(driver: WebDriver, name: str, text: str) -> None:
    """Switch the field to its JSON editor (its menu: "Use JSON Input") and type ``text``:
    the way to give a value the browser's own checks would refuse."""
    menu = "button[data-slot='dropdown-menu-trigger']"
    _do(driver, lambda d: _group_now(d, name).find_element(By.CSS_SELECTOR, menu), "click")
    item = "//*[@role='menuitem'][normalize-space()='Use JSON Input']"
    _do(driver, lambda d: d.find_element(By.XPATH, item), "click")

    def editor(d: WebDriver) -> WebElement:
        return _group_now(d, name).find_element(By.CSS_SELECTOR, ".cm-content")

    _do(driver, editor, "click")
    _do(driver, editor, "send_keys", Keys.CONTROL, "a")
    _do(driver, editor, "send_keys", text)
    wait_for(driver, lambda d: editor(d).text == text, f"{name}'s editor to hold {text!r}")


def fill(driver: WebDriver, name: str, value: Any) -> None:
    """Fill a field by the Python type of ``value``: date, bool, int, list of str, or str (a
    text, or an enum's option when the field is a list box)."""
    if isinstance(value, dt.date):
        fill_date(driver, name, value)
    elif isinstance(value, bool):
        set_switch(driver, name, value)
    elif isinstance(value, int):
        fill_integer(driver, name, value)
    elif isinstance(value, list | tuple):
        fill_list(driver, name, value)
    elif "str" not in union_tabs(driver, name) and (
        field_control(driver, name).get_attribute("aria-haspopup") == "listbox"
    ):
        choose_option(driver, name, value)
    else:
        fill_text(driver, name, value)


def _submit_button(driver: WebDriver) -> WebElement | None:
    found = driver.find_elements(
        By.XPATH, "//form//button[@type='submit'][normalize-space()='Submit']"
    )
    return found[0] if found else None


def submit(driver: WebDriver) -> None:
    """Click the form's Submit. A toast of an earlier submit may lie over it (bottom right)
    for a few seconds: then the button gets the click from script, which runs the same form
    submission, the browser's own validation included."""
    button = wait_for(driver, _submit_button, "the Submit button")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    try:
        button.click()
    except ElementClickInterceptedException:
        driver.execute_script("arguments[0].click()", button)


def native_invalid_fields(driver: WebDriver) -> dict[str, str]:
    """Field name -> the browser's own validation message, for the inputs that fail their
    HTML constraints (min/max of an integer): Chromium then refuses to submit the form and
    shows that message in a bubble, which is not part of the page."""
    found = driver.execute_script(
        "return [...document.querySelectorAll('form input:invalid, form textarea:invalid')]"
        ".map(e => [e.id, e.validationMessage])"
    )
    out = {}
    for control_id, message in found:
        labels = driver.find_elements(By.CSS_SELECTOR, f"label[for='{control_id}']")
        name = labels[0].text.removesuffix(" (Optional)") if labels else control_id
        out[name] = message
    return out


def field_errors(driver: WebDriver) -> dict[str, list[str]]:
    """Field name -> the error texts shown under it (after a submit the schema refused)."""
    out: dict[str, list[str]] = {}
    for error in driver.find_elements(By.CSS_SELECTOR, "form p.text-destructive"):
        group = error.find_element(
            By.XPATH,
            "./ancestor::div[contains(concat(' ', normalize-space(@class), ' '), ' group ')][1]",
        )
        label = group.find_element(By.CSS_SELECTOR, "label[data-slot='label']")
        out.setdefault(label.text.removesuffix(" (Optional)"), []).append(error.text)
    return out


def wait_for_field_errors(driver: WebDriver) -> dict[str, list[str]]:
    """The field errors, once there are any."""
    return wait_for(driver, lambda d: field_errors(d) or None, "errors next to the fields")


TOAST = "li[data-sonner-toast]"


def toasts(driver: WebDriver, kind: str | None = None) -> list[str]:
    """Texts of the toasts shown now (``kind``: "error", "success"), newest first. A toast goes
    after about 4 s: to catch the one a submit shows, use ``submit_refused`` or
    ``submit_accepted``, which collect them while they wait."""
    selector = TOAST + (f"[data-type='{kind}']" if kind else "")
    return [_toast_title(t) for t in driver.find_elements(By.CSS_SELECTOR, selector)]


def _toast_title(toast: WebElement) -> str:
    return _text_content(toast.find_element(By.CSS_SELECTOR, "[data-title]"))


def _text_content(element: WebElement) -> str:
    """The element's text whether or not it is on screen (a stacked toast, a card's clipped
    description: ``.text`` gives only what is displayed)."""
    return " ".join((element.get_attribute("textContent") or "").split())


@dataclass(frozen=True)
class Refusal:
    """What the form shows after a submit that the schema check refused."""

    field_errors: dict[str, list[str]]  # field name -> errors under it
    toasts: list[str]  # the titles of the error toasts this submit showed, each once


def submit_refused(driver: WebDriver, fields: Sequence[str]) -> Refusal:
    """Submit, then wait until each of ``fields`` shows an error and a new error toast has
    shown (collected while waiting; toasts of an earlier submit do not count). A submit that
    shows nothing at all within ``RESUBMIT_AFTER`` seconds is sent once more."""
    old = {t.id for t in driver.find_elements(By.CSS_SELECTOR, TOAST)}
    submit(driver)
    seen: dict[str, str] = {}
    resubmit_at = time.monotonic() + RESUBMIT_AFTER

    def check(d: WebDriver) -> dict[str, list[str]] | None:
        nonlocal resubmit_at
        for toast in d.find_elements(By.CSS_SELECTOR, TOAST + "[data-type='error']"):
            if toast.id not in old and toast.id not in seen:
                seen[toast.id] = _toast_title(toast)
        errors = field_errors(d)
        if seen and all(f in errors for f in fields):
            return errors
        # a submit that showed nothing at all (no toast, no error, no browser bubble) sent
        # nothing (CI, once, under load): submit once more; one that shows errors is not
        # submitted again (the UI would send nothing while they show)
        if (
            time.monotonic() > resubmit_at
            and not seen
            and not errors
            and not native_invalid_fields(d)
        ):
            resubmit_at = float("inf")
            submit(d)
        return None

    errors = wait_for(
        driver,
        check,
        f"errors under {list(fields)} and an error toast",
        timeout=TIMEOUT + RESUBMIT_AFTER,
        seen=lambda: (field_errors(driver), seen, toasts(driver), native_invalid_fields(driver)),
    )
    # distinct titles: a submit sent again may show the first one's toast too
    return Refusal(errors, list(dict.fromkeys(seen.values())))


@dataclass(frozen=True)
class Accepted:
    """What the UI shows after a valid submit."""

    run_id: str  # from the success toast's "View run" link: /v2/runs/flow-run/<id>
    toast: str  # "<run name> scheduled to start now"
    url: str  # where the page went: /v2/deployments/deployment/<id>?tab=Runs


def submit_accepted(driver: WebDriver) -> Accepted:
    """Submit a valid form; wait for the success toast and for the page to leave the form."""
    submit(driver)
    link = "a[href*='/runs/flow-run/']"

    def check(d: WebDriver) -> tuple[str, str] | None:
        for toast in d.find_elements(By.CSS_SELECTOR, TOAST + "[data-type='success']"):
            if match := RUN_ID.search(
                toast.find_element(By.CSS_SELECTOR, link).get_attribute("href") or ""
            ):
                return match.group(1), _toast_title(toast)
        return None

    run_id, toast = wait_for(driver, check, "the success toast with its View run link")
    wait_for(
        driver,
        lambda d: "/run?" not in d.current_url and not d.current_url.endswith("/run"),
        "the page to leave the form",
    )
    # the UI may land on the deployment's page first and pick its tab a moment later (seen
    # under load: ?tab=Details, then ?tab=Runs): the URL it settles on, unchanged for 1 s
    settled = [driver.current_url, time.monotonic()]

    def still(d: WebDriver) -> str | None:
        if d.current_url != settled[0]:
            settled[:] = [d.current_url, time.monotonic()]
        return settled[0] if time.monotonic() - settled[1] >= 1.0 else None

    return Accepted(run_id, toast, wait_for(driver, still, "the page's URL to settle"))


# --- flow run page


def open_flow_run(driver: WebDriver, ui_url: str, run_id: str, tab: str | None = None) -> None:
    """Open a flow run's page (V2), on ``tab`` ("Logs", the default, "Details", "Artifacts",
    "Parameters", ...), and wait for its header and that tab."""
    open_page(driver, ui_url, f"{V2}/runs/flow-run/{run_id}" + (f"?tab={tab}" if tab else ""))
    run_state(driver)
    if tab:
        select_tab(driver, tab)


def _tab_now(driver: WebDriver, tab: str) -> WebElement:
    return driver.find_element(By.XPATH, f"//button[@role='tab'][normalize-space()='{tab}']")


def select_tab(driver: WebDriver, tab: str) -> str:
    """Select a tab of the page by its title; returns the id of its panel (an element id
    that stays while React renders the panel again)."""

    def selected(d: WebDriver) -> bool:
        return _tab_now(d, tab).get_attribute("aria-selected") == "true"

    # Clicked again when the tab is still not selected after a third of the wait: a click on a
    # run page still rendering its graph (software WebGL, a loaded machine) was once lost, and
    # the tab stayed unselected for the whole 20 s (CI, 2026-12-08).
    for attempt in range(3):
        if wait_for(driver, lambda d: [selected(d)], f"tab {tab}")[0]:
            break
        _do(driver, lambda d: _tab_now(d, tab), "click")
        try:
            wait_for(driver, selected, f"tab {tab} to be selected", timeout=TIMEOUT / 3)
            break
        except TimeoutException:
            if attempt == 2:
                raise
    return wait_for(driver, lambda d: _tab_now(d, tab).get_attribute("aria-controls"), tab)


def tab_panel(driver: WebDriver, tab: str) -> WebElement:
    """Select a tab and return its panel element (for a one-off read)."""
    panel_id = select_tab(driver, tab)
    return wait_for(driver, lambda d: d.find_element(By.ID, panel_id), f"the {tab} panel")


def run_name(driver: WebDriver) -> str:
    """The run's name, last in the header's breadcrumb."""
    return wait_for(
        driver,
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-slot='breadcrumb-page']").text,
        "the run's name",
    )


STATE_BADGE = "nav[data-slot='breadcrumb'] + div span[data-slot='badge']"


def run_state(driver: WebDriver) -> str:
    """The state name in the header's badge ("Failed", "Completed", "Scheduled", ...)."""
    return wait_for(
        driver,
        lambda d: d.find_element(By.CSS_SELECTOR, STATE_BADGE).text.strip(),
        "the run's state badge",
    )


def header_text(driver: WebDriver) -> str:
    """What the run page's header shows: name, state, start time, duration, flow..."""

    def read(d: WebDriver) -> str:
        nav = d.find_element(By.CSS_SELECTOR, "nav[data-slot='breadcrumb']")
        return visible_text(d, nav.find_element(By.XPATH, "./.."))

    return wait_for(driver, read, "the run page's header")


def run_state_message(driver: WebDriver) -> str:
    """The state message, as the Details tab shows it ("None" when there is none)."""
    panel_id = select_tab(driver, "Details")
    xpath = ".//dl[dt[normalize-space()='State Message']]/dd"
    return wait_for(
        driver,
        lambda d: d.find_element(By.ID, panel_id).find_element(By.XPATH, xpath).text,
        "the State Message",
    )


def log_lines(driver: WebDriver, contains: str = "") -> list[str]:
    """The messages in the Logs tab (waiting for one that holds ``contains``)."""
    panel_id = select_tab(driver, "Logs")
    selector = "ol > li .whitespace-pre-wrap"

    def lines(d: WebDriver) -> list[str] | None:
        found = d.find_element(By.ID, panel_id).find_elements(By.CSS_SELECTOR, selector)
        texts = [e.text for e in found]
        return texts if any(contains in line for line in texts) else None

    return wait_for(driver, lines, f"a log line with {contains!r}")


# --- artifacts


@dataclass(frozen=True)
class ArtifactCard:
    """An artifact as the run page's Artifacts tab lists it."""

    key: str
    type: str  # as shown: "MARKDOWN", "TABLE", ...
    description: str
    href: str  # /v2/artifacts/artifact/<id>

    @property
    def artifact_id(self) -> str:
        return self.href.rstrip("/").rsplit("/", 1)[-1]


CARDS = "[data-testid='flow-run-artifacts-grid'] a"


def run_artifacts(driver: WebDriver, count: int = 1) -> list[ArtifactCard]:
    """The cards of the open run page's Artifacts tab (waiting for at least ``count``)."""
    panel_id = select_tab(driver, "Artifacts")

    def cards(d: WebDriver) -> list[ArtifactCard] | None:
        found = d.find_element(By.ID, panel_id).find_elements(By.CSS_SELECTOR, CARDS)
        if len(found) < count:
            return None
        return [
            ArtifactCard(
                key=_text_content(card.find_element(By.TAG_NAME, "h3")),
                type=_text_content(
                    card.find_element(By.CSS_SELECTOR, "[data-slot='card-header'] p")
                ),
                description=_text_content(card.find_element(By.CSS_SELECTOR, "hr + div")),
                href=card.get_attribute("href") or "",
            )
            for card in found
        ]

    return wait_for(driver, cards, f"{count} artifact cards")


def open_artifact(driver: WebDriver, ui_url: str, artifact_id: str, v1: bool = False) -> None:
    """Open an artifact's page (``/v2/artifacts/artifact/<id>``, or V1's
    ``/artifacts/artifact/<id>``) and wait for its rendered markdown."""
    prefix = "" if v1 else V2
    open_page(driver, ui_url, f"{prefix}/artifacts/artifact/{artifact_id}")
    rendered_markdown(driver)


def rendered_markdown(driver: WebDriver) -> WebElement:
    """The rendered markdown of the open artifact page."""
    return wait_for(
        driver, lambda d: d.find_element(By.CSS_SELECTOR, MARKDOWN), "the rendered markdown"
    )


def markdown_text(driver: WebDriver) -> str:
    """The ``innerText`` of the open artifact page's rendered markdown, read in the same wait as
    the element is found: the UI may replace the element right after it first renders (a stale
    element is read again, not failed on)."""

    def text(d: WebDriver) -> str | None:
        return visible_text(d, d.find_element(By.CSS_SELECTOR, MARKDOWN)) or None

    return wait_for(driver, text, "the rendered markdown's text")


def markdown_images(driver: WebDriver, count: int = 0) -> list[WebElement]:
    """The ``<img>`` in the rendered markdown, once ``count`` are there and all have loaded
    or failed (``complete``)."""

    def images(d: WebDriver) -> list[list[WebElement]] | None:
        found = d.find_element(By.CSS_SELECTOR, MARKDOWN).find_elements(By.TAG_NAME, "img")
        if len(found) < count:
            return None
        done = d.execute_script("return arguments[0].every(i => i.complete)", found)
        return [found] if done else None  # [[]] is truthy

    return wait_for(driver, images, f"{count} loaded image(s) in the markdown")[0]


def natural_width(driver: WebDriver, image: WebElement) -> int:
    """The width of the picture the browser decoded (0: not loaded, broken)."""
    return int(driver.execute_script("return arguments[0].naturalWidth", image))


@dataclass(frozen=True)
class Image:
    """An ``<img>`` of the rendered markdown, as the browser has it."""

    src: str
    alt: str
    natural_width: int  # 0: not loaded, or broken


def markdown_image_info(driver: WebDriver, count: int = 0) -> list[Image]:
    """src, alt and naturalWidth of the rendered markdown's images, read in one script once
    ``count`` are there and all have loaded or failed."""
    script = (
        "const imgs = [...document.querySelector(arguments[0]).querySelectorAll('img')];"
        "return imgs.every(i => i.complete)"
        " ? imgs.map(i => [i.getAttribute('src'), i.alt, i.naturalWidth]) : null;"
    )

    def read(d: WebDriver) -> list[list[Image]] | None:
        found = d.execute_script(script, MARKDOWN)
        if found is None or len(found) < count:
            return None
        return [[Image(src, alt, int(width)) for src, alt, width in found]]  # [[]] is truthy

    return wait_for(driver, read, f"{count} loaded image(s) in the markdown")[0]


def markdown_links(driver: WebDriver, count: int = 0) -> list[tuple[str, str]]:
    """(text, href) of each link in the rendered markdown (once there are ``count``)."""

    def read(d: WebDriver) -> list[list[tuple[str, str]]] | None:
        links = d.find_element(By.CSS_SELECTOR, MARKDOWN).find_elements(By.TAG_NAME, "a")
        found = [(a.text, a.get_attribute("href") or "") for a in links]
        return [found] if len(found) >= count else None  # [[]] is truthy

    return wait_for(driver, read, f"{count} link(s) in the markdown")[0]
