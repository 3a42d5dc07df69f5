# Generates a C source holding the files of a folder (the web page) as
# arrays, with a table of name, bytes, length and SHA-256 (the ETag), so
# the binary serves exactly the repository's files and needs nothing at run
# time. Invoked at build time:
#   cmake -DDIR=web -DFILES=index.html,app.mjs -DOUT=web_data.c -P embed_dir.cmake
string(REPLACE "," ";" FILES "${FILES}")
string(CONCAT body "/* Generated from ${DIR} by embed_dir.cmake: do not edit. */\n"
       "#include \"api/api_int.h\"\n\n")
set(table "")
set(i 0)
foreach(name IN LISTS FILES)
  file(READ ${DIR}/${name} hex HEX)
  file(SHA256 ${DIR}/${name} sum)
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
  string(APPEND body "static const unsigned char f${i}[] = {\n${bytes}0x00};\n")
  string(APPEND table "    {\"${name}\", f${i}, ${len}, \"${sum}\"},\n")
  math(EXPR i "${i} + 1")
endforeach()
file(WRITE ${OUT}.tmp "${body}\nconst struct api_web_file api_web_files[] = {\n${table}};\n"
  "const size_t api_web_nfiles = ${i};\n")
# Only touch the output when it changed, so an unchanged page relinks nothing.
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.tmp)
