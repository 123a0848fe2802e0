// main.cpp — doctest entry point for the apiclient writer suites.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
