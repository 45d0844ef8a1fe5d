// First-boot configuration portal: the HTML form and the handling of its submission.
// The ESP32 serves these through its WebServer; keeping them here lets the host test the
// escaping and validation that protect the device from a malformed form post.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "interfaces.hpp"

namespace es {

std::string htmlEscape(const std::string& s);

// The whole page. Secrets are never written into the page; the form shows whether they
// are set and keeps them when left empty.
std::string renderPortalPage(KeyValueStore& store, const std::string& deviceHint,
                             const std::vector<std::string>& messages);

// Stores every submitted, non-empty field after validating it. field(key, out) returns
// whether the form contained key. Returns the problems found (empty: all saved).
std::vector<std::string> applyPortalForm(
    KeyValueStore& store, const std::function<bool(const std::string&, std::string&)>& field);

}  // namespace es
