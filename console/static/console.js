// Tells the server the viewer's time zone (a cookie), so dates are shown in it. Nothing else:
// the pages work without JavaScript, and htmx does the partial updates.
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
