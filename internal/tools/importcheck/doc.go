// Package importcheck holds no code, only tests. TestImportRules holds every
// package of the module to ARCHITECTURE.md's import rules (go list, go list
// -deps), and TestArchitecturePicture that page's package picture to what go
// list finds. The third builds a throwaway
// module outside the repository that requires l402kit the way a user's
// program does (one replace line, pointing at this checkout), imports every
// adapter and opens each by URL. It proves that importing l402kit needs no
// replace lines of its own and compiles against a stock
// google.golang.org/protobuf.
package importcheck
