#ifndef CSQLITE_SETUP_H
#define CSQLITE_SETUP_H

/// Turns off SQLite's memory statistics for the whole process. Swift cannot call
/// sqlite3_config, which is variadic. Call it before SQLite is first used; returns
/// SQLite's result code (SQLITE_MISUSE when it is too late, which changes nothing).
int soundbatch_sqlite_disable_memory_statistics(void);

#endif
