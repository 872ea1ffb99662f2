// Text from a recording (process names, file paths) made safe to show: the
// text report, the SVG heatmap and the sweep chart all go through here.
#pragma once

#include <string>

namespace mb::prof {

// Valid UTF-8 stays as it is; control characters (C0, DEL, C1) and bytes that
// are not valid UTF-8 (a name cut in the middle of a character, as the
// kernel's 15-byte comm is) become \xNN, so nothing reaches a terminal as an
// escape sequence and an XML parser gets well-formed text.
std::string printable(const std::string& in);

// printable(), then <, >, &, " and ' as XML entities.
std::string xml_escape(const std::string& in);

}  // namespace mb::prof
