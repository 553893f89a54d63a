// Tells the server the viewer's time zone (a cookie), so dates are shown in it; and holds an
// open case page's live refresh while a form on it is being filled in (or the tab is hidden).
// Nothing else: the pages work without JavaScript, and htmx does the partial updates.
(function () {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var value = "console_tz=" + encodeURIComponent(zone);
    if (zone && document.cookie.split("; ").indexOf(value) < 0) {
      document.cookie = value + "; path=/; SameSite=Lax; max-age=31536000";
    }
  } catch (ignored) {
    // an old browser: dates stay in the desk calendar's zone
  }
})();

(function () {
  // A field differs from what the page was rendered with (typed, chosen, ticked or a file picked).
  function changed(field) {
    if (field.type === "hidden" || field.type === "submit" || field.type === "button") return false;
    if (field.type === "file") return field.files && field.files.length > 0;
    if (field.type === "checkbox" || field.type === "radio") return field.checked !== field.defaultChecked;
    if (field.tagName === "SELECT") {
      // Without a `selected` option in the markup, a list starts on its first option.
      var initial = field.options.length ? 0 : -1;
      for (var i = 0; i < field.options.length; i++) {
        if (field.options[i].defaultSelected) {
          initial = i;
          break;
        }
      }
      return field.selectedIndex !== initial;
    }
    return field.value !== field.defaultValue;
  }

  // Someone is filling in a form of the case: a field of it has the focus or holds changes.
  function filling(box) {
    var active = document.activeElement;
    if (active && box.contains(active) && active.form && active.type !== "submit") return true;
    var fields = box.querySelectorAll("form input, form textarea, form select");
    for (var i = 0; i < fields.length; i++) {
      if (changed(fields[i])) return true;
    }
    return false;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail && event.detail.elt;
    if (!source || !source.dataset || source.dataset.live !== "case") return;
    var box = document.getElementById("case");
    // The next tick asks again: while someone fills in a form here, or nobody looks at the tab.
    if (document.hidden || (box && filling(box))) event.preventDefault();
  });
})();
