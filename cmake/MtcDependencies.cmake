# Finds mtconn's dependencies (Debian 12 packages). Each failure names the
# package that provides what is missing, so the fix is one apt-get away.
include(FindPackageHandleStandardArgs)
find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: install it with 'apt-get install pkg-config'")
endif()

# mbedTLS 2.28 ships no pkg-config or CMake file on Debian 12: look for it.
find_path(MBEDTLS_INCLUDE_DIR mbedtls/version.h)
find_library(MBEDCRYPTO_LIBRARY mbedcrypto)
if(NOT MBEDTLS_INCLUDE_DIR OR NOT MBEDCRYPTO_LIBRARY)
  message(FATAL_ERROR "mbedTLS not found: install it with 'apt-get install libmbedtls-dev'")
endif()
file(STRINGS "${MBEDTLS_INCLUDE_DIR}/mbedtls/version.h" _mbed_ver
     REGEX "#define MBEDTLS_VERSION_STRING +\"")
string(REGEX REPLACE ".*\"([0-9.]+)\".*" "\\1" MBEDTLS_VERSION "${_mbed_ver}")
if(MBEDTLS_VERSION VERSION_LESS 2.16 OR NOT MBEDTLS_VERSION VERSION_LESS 3.0)
  message(FATAL_ERROR "mbedTLS ${MBEDTLS_VERSION} found; mtconn needs 2.x (>= 2.16): "
                      "install 'libmbedtls-dev' from Debian 12")
endif()
add_library(mtc_dep_mbedcrypto INTERFACE)
target_include_directories(mtc_dep_mbedcrypto INTERFACE ${MBEDTLS_INCLUDE_DIR})
target_link_libraries(mtc_dep_mbedcrypto INTERFACE ${MBEDCRYPTO_LIBRARY})

function(mtc_pkg var module package)
  pkg_check_modules(${var} QUIET IMPORTED_TARGET ${module})
  if(NOT ${var}_FOUND)
    message(FATAL_ERROR "${module} not found: install it with 'apt-get install ${package}'")
  endif()
endfunction()
mtc_pkg(ZLIB zlib zlib1g-dev)
mtc_pkg(JANSSON jansson libjansson-dev)
mtc_pkg(CARES libcares libc-ares-dev)
mtc_pkg(CURL libcurl libcurl4-openssl-dev)
message(STATUS "mtconn deps: mbedTLS ${MBEDTLS_VERSION}, zlib ${ZLIB_VERSION}, "
               "jansson ${JANSSON_VERSION}, c-ares ${CARES_VERSION}, curl ${CURL_VERSION}")
