#include "portal.hpp"

#include "config.hpp"

namespace es {

std::string htmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string renderPortalPage(KeyValueStore& store, const std::string& deviceHint,
                             const std::vector<std::string>& messages) {
  std::string h =
      "<!doctype html><html><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
      "<title>EasySmart device setup</title><style>body{font-family:sans-serif;max-width:40em;"
      "margin:1em auto;padding:0 1em}label{display:block;margin-top:.8em;font-weight:bold}"
      "input,textarea{width:100%;box-sizing:border-box}small{color:#555}"
      ".msg{background:#fee;padding:.5em}</style></head><body><h1>EasySmart device setup</h1>";
  if (!deviceHint.empty()) h += "<p>" + htmlEscape(deviceHint) + "</p>";
  for (const auto& m : messages) h += "<p class=\"msg\">" + htmlEscape(m) + "</p>";
  h += "<form method=\"post\" action=\"/save\">";
  for (const auto& k : configKeys()) {
    std::string current;
    const bool set = store.get(k.key, current);
    h += "<label for=\"";
    h += k.key;
    h += "\">";
    h += k.key;
    h += "</label><small>" + htmlEscape(k.help);
    if ((k.secret || k.multiline) && set) h += " (set; leave empty to keep)";
    h += "</small>";
    if (k.multiline) {
      h += "<textarea rows=\"4\" name=\"";
      h += k.key;
      h += "\" id=\"";
      h += k.key;
      h += "\"></textarea>";
    } else {
      h += "<input name=\"";
      h += k.key;
      h += "\" id=\"";
      h += k.key;
      h += k.secret ? "\" type=\"password\" value=\"\">" : "\" value=\"" + htmlEscape(current) + "\">";
    }
  }
  h += "<p><button type=\"submit\">Save and reboot</button></p></form></body></html>";
  return h;
}

std::vector<std::string> applyPortalForm(
    KeyValueStore& store, const std::function<bool(const std::string&, std::string&)>& field) {
  std::vector<std::string> problems;
  std::vector<std::pair<std::string, std::string>> accepted;
  for (const auto& k : configKeys()) {
    std::string v;
    if (!field(k.key, v)) continue;
    // Browsers submit textarea line breaks as CRLF; PEM parsers want LF.
    std::string clean;
    for (char c : v) {
      if (c != '\r') clean += c;
    }
    if (!k.multiline) {
      while (!clean.empty() && (clean.back() == ' ' || clean.back() == '\n')) clean.pop_back();
    } else if (!clean.empty() && clean.back() != '\n') {
      clean += '\n';
    }
    if (clean.empty()) continue;  // empty means "keep the current value"
    const std::string why = validateConfigValue(k.key, clean);
    if (!why.empty()) {
      problems.push_back(std::string(k.key) + ": " + why);
      continue;
    }
    accepted.emplace_back(k.key, clean);
  }
  // All or nothing: a half-applied form could leave, say, a new broker URL with old
  // credentials.
  if (!problems.empty()) return problems;
  for (const auto& kv : accepted) {
    if (!store.put(kv.first, kv.second)) problems.push_back(kv.first + ": could not be saved");
  }
  return problems;
}

}  // namespace es
