// `rules_replay ...` is `verdictd replay ...` without the daemon: the replay
// tests run it so that they do not depend on the rest of the service.
#include "verdictd/rules/replay.h"

int main(int argc, char** argv) { return verdictd::rules::ReplayMain(argc, argv); }
