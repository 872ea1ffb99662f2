// Integer options as people write them. CLI11 reads integers with strtoll in
// base 0, so "--pid 010" is pid 8 and "--interval 0100" is 64 ms: a number
// with a leading zero is refused instead of being read as octal.
#pragma once

namespace CLI {
class App;
}

namespace mb {

// On every integer option of `app` and of its commands; call once all are added.
void refuse_octal_integers(CLI::App& app);

}  // namespace mb
