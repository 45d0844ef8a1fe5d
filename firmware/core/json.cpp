#include "json.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace es {

bool formatNumber(double v, std::string& out) {
  if (!std::isfinite(v)) return false;
  if (v == 0) {
    out = "0";  // also folds -0, which some parsers reject as an integer
    return true;
  }
  char buf[40];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  out = buf;
  return true;
}

bool formatTimestamp(double epochSeconds, std::string& out) {
  if (!std::isfinite(epochSeconds) || epochSeconds < 0) return false;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.3f", epochSeconds);
  std::string s(buf);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  out = s;
  return true;
}

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is invalid
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t utf8SequenceLength(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  unsigned cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  if (cp > 0x10FFFF) return 0;
  return n;
}

void appendUtf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

bool isValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void appendJsonString(std::string& out, const std::string& s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = utf8SequenceLength(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(s, i, n);
      i += n;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

// ---------------------------------------------------------------- writer

void JsonWriter::separator() {
  if (afterKey_) {
    afterKey_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
}

JsonWriter& JsonWriter::beginObject() {
  separator();
  out_ += '{';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::endObject() {
  out_ += '}';
  if (!first_.empty()) first_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::beginArray() {
  separator();
  out_ += '[';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::endArray() {
  out_ += ']';
  if (!first_.empty()) first_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::key(const std::string& k) {
  separator();
  appendJsonString(out_, k);
  out_ += ':';
  afterKey_ = true;
  return *this;
}

JsonWriter& JsonWriter::value(const std::string& s) {
  separator();
  appendJsonString(out_, s);
  return *this;
}

JsonWriter& JsonWriter::value(const char* s) { return value(std::string(s ? s : "")); }

JsonWriter& JsonWriter::value(double d) {
  separator();
  std::string num;
  if (!formatNumber(d, num)) {
    ok_ = false;
    num = "null";  // keeps the document parseable for logging even though it is rejected
  }
  out_ += num;
  return *this;
}

JsonWriter& JsonWriter::value(long long i) {
  separator();
  out_ += std::to_string(i);
  return *this;
}

JsonWriter& JsonWriter::value(unsigned long long i) {
  separator();
  out_ += std::to_string(i);
  return *this;
}

JsonWriter& JsonWriter::value(bool b) {
  separator();
  out_ += b ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::timestamp(double epochSeconds) {
  separator();
  std::string ts;
  if (!formatTimestamp(epochSeconds, ts)) {
    ok_ = false;
    ts = "null";
  }
  out_ += ts;
  return *this;
}

JsonWriter& JsonWriter::null() {
  separator();
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::raw(const std::string& json) {
  separator();
  out_ += json;
  return *this;
}

// ---------------------------------------------------------------- reader

const JsonValue* JsonValue::find(const std::string& key) const {
  if (type_ != Type::Object) return nullptr;
  for (const auto& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

class JsonParser {
 public:
  JsonParser(const std::string& text, int maxDepth) : s_(text), maxDepth_(maxDepth) {}

  JsonParseResult run(JsonValue& out) {
    JsonParseResult r;
    skipWs();
    if (!parseValue(out, 0)) {
      r.error = error_;
      r.offset = pos_;
      return r;
    }
    skipWs();
    if (pos_ != s_.size()) {
      r.error = "trailing_characters";
      r.offset = pos_;
      return r;
    }
    r.ok = true;
    r.offset = pos_;
    return r;
  }

 private:
  bool fail(const char* why) {
    if (error_.empty()) error_ = why;
    return false;
  }

  void skipWs() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool literal(const char* word) {
    const size_t n = std::strlen(word);
    if (s_.compare(pos_, n, word) != 0) return fail("invalid_literal");
    pos_ += n;
    return true;
  }

  bool parseValue(JsonValue& v, int depth) {
    if (pos_ >= s_.size()) return fail("unexpected_end");
    const char c = s_[pos_];
    switch (c) {
      case '{': return parseObject(v, depth + 1);
      case '[': return parseArray(v, depth + 1);
      case '"':
        v.type_ = JsonValue::Type::String;
        return parseString(v.string_);
      case 't':
        v.type_ = JsonValue::Type::Bool;
        v.bool_ = true;
        return literal("true");
      case 'f':
        v.type_ = JsonValue::Type::Bool;
        v.bool_ = false;
        return literal("false");
      case 'n':
        v.type_ = JsonValue::Type::Null;
        return literal("null");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parseNumber(v);
        return fail("unexpected_character");
    }
  }

  bool parseObject(JsonValue& v, int depth) {
    if (depth > maxDepth_) return fail("too_deep");
    v.type_ = JsonValue::Type::Object;
    ++pos_;
    skipWs();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      skipWs();
      if (pos_ >= s_.size() || s_[pos_] != '"') return fail("expected_key");
      std::string key;
      if (!parseString(key)) return false;
      for (const auto& m : v.members_) {
        if (m.first == key) return fail("duplicate_key");
      }
      skipWs();
      if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected_colon");
      ++pos_;
      skipWs();
      JsonValue child;
      if (!parseValue(child, depth)) return false;
      v.members_.emplace_back(std::move(key), std::move(child));
      skipWs();
      if (pos_ >= s_.size()) return fail("unexpected_end");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return fail("expected_comma_or_brace");
    }
  }

  bool parseArray(JsonValue& v, int depth) {
    if (depth > maxDepth_) return fail("too_deep");
    v.type_ = JsonValue::Type::Array;
    ++pos_;
    skipWs();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      skipWs();
      JsonValue child;
      if (!parseValue(child, depth)) return false;
      v.items_.push_back(std::move(child));
      skipWs();
      if (pos_ >= s_.size()) return fail("unexpected_end");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return fail("expected_comma_or_bracket");
    }
  }

  bool hex4(unsigned& out) {
    if (pos_ + 4 > s_.size()) return fail("bad_unicode_escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      out <<= 4;
      if (c >= '0' && c <= '9') out |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') out |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') out |= static_cast<unsigned>(c - 'A' + 10);
      else return fail("bad_unicode_escape");
    }
    return true;
  }

  bool parseString(std::string& out) {
    ++pos_;  // opening quote
    out.clear();
    while (pos_ < s_.size()) {
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return fail("control_character_in_string");
      if (c == '\\') {
        if (++pos_ >= s_.size()) return fail("unexpected_end");
        const char e = s_[pos_++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            unsigned cp;
            if (!hex4(cp)) return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              unsigned lo;
              if (pos_ + 2 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') {
                return fail("lone_surrogate");
              }
              pos_ += 2;
              if (!hex4(lo)) return false;
              if (lo < 0xDC00 || lo > 0xDFFF) return fail("lone_surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              return fail("lone_surrogate");
            }
            appendUtf8(out, cp);
            break;
          }
          default: return fail("bad_escape");
        }
        continue;
      }
      const size_t n = utf8SequenceLength(s_, pos_);
      if (n == 0) return fail("invalid_utf8");
      out.append(s_, pos_, n);
      pos_ += n;
    }
    return fail("unterminated_string");
  }

  bool parseNumber(JsonValue& v) {
    const size_t start = pos_;
    const auto digit = [&](size_t p) { return p < s_.size() && s_[p] >= '0' && s_[p] <= '9'; };
    if (s_[pos_] == '-') ++pos_;
    if (!digit(pos_)) return fail("bad_number");
    if (s_[pos_] == '0') {
      ++pos_;
      if (digit(pos_)) return fail("leading_zero");
    } else {
      while (digit(pos_)) ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!digit(pos_)) return fail("bad_number");
      while (digit(pos_)) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digit(pos_)) return fail("bad_number");
      while (digit(pos_)) ++pos_;
    }
    const std::string text = s_.substr(start, pos_ - start);
    const double d = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(d)) return fail("number_out_of_range");
    v.type_ = JsonValue::Type::Number;
    v.number_ = d;
    return true;
  }

  const std::string& s_;
  int maxDepth_;
  size_t pos_ = 0;
  std::string error_;
};

JsonParseResult parseJson(const std::string& text, JsonValue& out, int maxDepth) {
  out = JsonValue();
  JsonParser p(text, maxDepth);
  return p.run(out);
}

}  // namespace es
