/* Every ceiling pbiport enforces, in one place. */
#ifndef PBIPORT_LIMITS_H
#define PBIPORT_LIMITS_H

#define PB_ERR_MAX              512                   /* one error message line */
#define PB_CONTRACT_MAX_BYTES   (16u * 1024 * 1024)   /* an ODCS contract document */
#define PB_CONTRACT_MAX_DEPTH   64                    /* YAML/JSON nesting */
#define PB_CONTRACT_MAX_TABLES  10000
#define PB_CONTRACT_MAX_COLUMNS 4000                  /* per table */
#define PB_NAME_MAX_BYTES       1024                  /* a table/column name */
#define PB_TMDL_MAX_FILE_BYTES  (64u * 1024 * 1024)   /* one .tmdl file read by the parser */
#define PB_TMDL_MAX_FILES       100000
#define PB_TMDL_MAX_DEPTH       64                    /* indentation levels */
#define PB_TMDL_MAX_MODEL_BYTES (512u * 1024 * 1024)  /* parser memory for one model (all files) */
#define PB_TMDL_MAX_DIR_DEPTH   16                    /* folder nesting scanned for .tmdl files */
#define PB_RENDER_MAX_BYTES     (512u * 1024 * 1024)  /* all files one render may produce */
#define PB_LUA_MEM_MAX          (256u * 1024 * 1024)  /* Lua heap per render */
#define PB_LUA_TIME_MAX_MS      5000                  /* wall time per render */
#define PB_LUA_MAX_SOURCE_BYTES (1u * 1024 * 1024)    /* one template or module file */

#endif
