// ncursesw for `fieldops dispatch`. Only the terminal code imports it.
#ifndef FIELDOPS_CNCURSES_SHIM_H
#define FIELDOPS_CNCURSES_SHIM_H

#define _XOPEN_SOURCE_EXTENDED 1
#define NCURSES_WIDECHAR 1
#include <locale.h>
#include <wchar.h>
#include <ncursesw/curses.h>

// Macros Swift cannot import, as functions.
static inline int fieldops_color_pair(int n) { return (int)COLOR_PAIR(n); }
static inline int fieldops_a_bold(void) { return (int)A_BOLD; }
static inline int fieldops_a_reverse(void) { return (int)A_REVERSE; }
static inline int fieldops_a_dim(void) { return (int)A_DIM; }
static inline int fieldops_a_underline(void) { return (int)A_UNDERLINE; }
static inline WINDOW *fieldops_stdscr(void) { return stdscr; }
static inline int fieldops_lines(void) { return LINES; }
static inline int fieldops_cols(void) { return COLS; }
static inline int fieldops_get_wch(wint_t *ch) { return wget_wch(stdscr, ch); }

#endif
