#include <immintrin.h>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <chrono>
#include <unistd.h>
#include <sys/syscall.h>
struct alignas(64) Cfg { uint8_t palette=1, start=0; uint8_t res[14]={}; uint16_t colsb[16]={}; uint8_t rows[16]={};
  Cfg(){ for(int t=0;t<8;++t) colsb[t]=64, rows[t]=16; } };
static const int T=2048, G=9, NB=96;
alignas(64) static int8_t A[T*G*64];     // row-major [T][G*64] or tile-major [T/16][G][16][64]
alignas(64) static int8_t Bb[NB*G*1024];
alignas(64) static float U[T*G], SC[NB*G*16];
alignas(64) static float Y[T*NB*16];
alignas(64) static int32_t ct[4][256];
static inline __attribute__((always_inline)) void epi(__m512* acc, const int32_t* c, const float* sc, const float* u) {
  __m512 vsc = _mm512_load_ps(sc);
#pragma GCC unroll 16
  for (int m=0;m<16;++m) {
    __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(c + m*16));
    acc[m] = _mm512_fmadd_ps(v, _mm512_mul_ps(vsc, _mm512_set1_ps(u[m])), acc[m]);
  }
}
// step j of (token tile t0, block b, group g): tile regs by phase
#define ISSUE(P, BT, AT, CT, PC) { \
  _tile_loadd(BT, Bb + (bb*G+gg)*1024, 64); \
  if (TM) _tile_loadd(AT, A + ((t0/16)*G + gg)*1024, 64); else _tile_loadd(AT, A + t0*G*64 + gg*64, G*64); \
  _tile_zero(CT); _tile_dpbssd(CT, AT, BT); _tile_stored(CT, ct[P], 64); }
template<int TM, int ORD, int D>
__attribute__((noinline)) void run(int panel) {
  for (int p0 = 0; p0 < NB; p0 += panel) {
    const int p1 = std::min(NB, p0 + panel);
    for (int t0 = 0; t0 < T; t0 += 16) {
      for (int b = p0; b < p1; ++b) {
        __m512 acc[16];
        for (int m=0;m<16;++m) acc[m]=_mm512_setzero_ps();
        // steps g = 0..G-1, epilogue 2 behind, within the block (simplified: drain at block end)
        for (int g = 0; g < G + D; ++g) {
          if (ORD >= 1 && g >= D) { const int e = g - D; epi(acc, ct[e & 3], SC + (b*G+e)*16, U + t0*G + e*16); }
          if (ORD != 2 && g < G) {
            const int bb = b, gg = g;
            switch (g & 3) { case 0: ISSUE(0,0,1,4,7) break; case 1: ISSUE(1,2,3,5,4) break; case 2: ISSUE(2,0,1,6,5) break; default: ISSUE(3,2,3,7,6) }
          }
          if (ORD == 0 && g >= D) { const int e = g - D; epi(acc, ct[e & 3], SC + (b*G+e)*16, U + t0*G + e*16); }
        }
        for (int m=0;m<16;++m) _mm512_storeu_ps(Y + ((t0+m)*NB + b)*16, acc[m]);
      }
    }
  }
}
template<int TM, int ORD, int D> double timeit(int panel){ run<TM,ORD,D>(panel); auto a=std::chrono::steady_clock::now(); for(int i=0;i<5;++i) run<TM,ORD,D>(panel);
  auto b=std::chrono::steady_clock::now(); double s=std::chrono::duration<double>(b-a).count()/5; return s*1e9/((T/16)*NB*G); }
int main(){
  if (syscall(SYS_arch_prctl, 0x1023, 18)) { printf("no amx\n"); return 1; }
  for (long i=0;i<(long)sizeof(A);++i) A[i]=(int8_t)((i*2654435761u)>>13);
  for (long i=0;i<(long)sizeof(Bb);++i) Bb[i]=(int8_t)(((i*2246822519u)>>11)%31)-15;
  for (int i=0;i<T*G;++i) U[i]=1.0f/(1+i%7);
  for (int i=0;i<NB*G*16;++i) SC[i]=0.01f;
  Cfg cfg; _tile_loadconfig(&cfg);
  printf("epi only %.1f\n", timeit<0,2,2>(96));
  printf("issue-then-epi D=2 %.1f | D=3 %.1f | epi-then-issue D=2 %.1f | D=3 %.1f | D=1 %.1f\n", timeit<0,0,2>(96), timeit<0,0,3>(96), timeit<0,1,2>(96), timeit<0,1,3>(96), timeit<0,1,1>(96));
  _tile_release();
}
