{
  "variables": {
    "winnow_sanitize%": ""
  },
  "targets": [
    {
      # The AVX2 kernels are the only code compiled with -mavx2/-mfma/-mf16c; the rest
      # of the addon stays baseline x86-64 and reaches them through run-time dispatch.
      "target_name": "winnow_avx2",
      "type": "static_library",
      "sources": ["src/utils/simd_avx2.cpp"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++20", "-O3", "-mavx2", "-mfma", "-mf16c", "-ffp-contract=off", "-fPIC", "-fvisibility=hidden", "-fvisibility-inlines-hidden"],
      "conditions": [
        ["winnow_sanitize!=''", { "cflags_cc": ["-fsanitize=<(winnow_sanitize)", "-g", "-fno-omit-frame-pointer"] }]
      ]
    },
    {
      "target_name": "winnow_native",
      "dependencies": ["winnow_avx2", "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "sources": [
        "src/binding/addon.cpp",
        "src/index/params.cpp",
        "src/index/persist.cpp",
        "src/index/id_filter.cpp",
        "src/index/vector_index.cpp",
        "src/invlists/invlists.cpp",
        "src/learn/adamw.cpp",
        "src/learn/kl_loss.cpp",
        "src/learn/probe.cpp",
        "src/learn/recenter.cpp",
        "src/learn/samples.cpp",
        "src/learn/trainer.cpp",
        "src/utils/crc32.cpp",
        "src/utils/kmeans.cpp",
        "src/utils/pca.cpp",
        "src/utils/simd_dispatch.cpp",
        "src/utils/simd_scalar.cpp",
        "src/utils/vector_text.cpp"
      ],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      # Hidden visibility + -Bsymbolic: the addon's own C++ (shared_ptr, containers) must
      # bind to its own definitions, not to same-named symbols exported by the node binary.
      "cflags_cc": ["-std=c++20", "-O3", "-ffp-contract=off", "-Wall", "-Wno-unused-function", "-fvisibility=hidden", "-fvisibility-inlines-hidden"],
      "ldflags": ["-Wl,-Bsymbolic"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["winnow_sanitize!=''", {
          "cflags_cc": ["-fsanitize=<(winnow_sanitize)", "-g", "-fno-omit-frame-pointer"],
          "ldflags": ["-fsanitize=<(winnow_sanitize)"]
        }]
      ]
    }
  ]
}
