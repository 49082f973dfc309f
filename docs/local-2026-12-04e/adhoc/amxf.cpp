#include <immintrin.h>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <chrono>
#include <unistd.h>
#include <sys/syscall.h>
struct alignas(64) Cfg { uint8_t palette=1, start=0; uint8_t res[14]={}; uint16_t colsb[16]={}; uint8_t rows[16]={};
  Cfg(){ for(int t=0;t<8;++t) colsb[t]=64, rows[t]=16; } };
static const int T=2048, G=9, NB=96;
alignas(64) static int8_t A[T*G*64];
alignas(64) static int8_t Bb[NB*G*1024];
alignas(64) static float U[G*T], SC[NB*G*16];
alignas(64) static float Y[T*NB*16];
alignas(64) static int32_t ct[2][4][256];

static inline __attribute__((always_inline)) void epi_mem(float* acc, const int32_t* c, const float* sc, const float* u) {
  __m512 vsc = _mm512_load_ps(sc);
#pragma GCC unroll 16
  for (int m=0;m<16;++m) {
    __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(c + m*16));
    _mm512_store_ps(acc + m*32, _mm512_fmadd_ps(v, _mm512_mul_ps(vsc, _mm512_set1_ps(u[m])), _mm512_load_ps(acc + m*32)));
  }
}
template<int MODE>
__attribute__((noinline)) void run() {
  alignas(64) float acc[32*32];
  for (int t0 = 0; t0 < T; t0 += 32) {
    for (int b = 0; b < NB; b += 2) {
      memset(acc, 0, sizeof(acc));
      for (int g = 0; g <= G; ++g) {
        if (g < G) {
          const int s = g & 1;
          _tile_loadd(0, A + t0*G*64 + g*64, G*64);
          _tile_loadd(2, Bb + (b*G+g)*1024, 64);
          _tile_zero(4); _tile_dpbssd(4, 0, 2);
          _tile_loadd(1, A + (t0+16)*G*64 + g*64, G*64);
          _tile_zero(5); _tile_dpbssd(5, 1, 2);
          _tile_loadd(3, Bb + ((b+1)*G+g)*1024, 64);
          _tile_zero(6); _tile_dpbssd(6, 0, 3);
          _tile_zero(7); _tile_dpbssd(7, 1, 3);
          _tile_stored(4, ct[s][0], 64); _tile_stored(5, ct[s][1], 64);
          _tile_stored(6, ct[s][2], 64); _tile_stored(7, ct[s][3], 64);
        }
        if (MODE == 1 && g > 0) {
          const int s = (g - 1) & 1, gg = g - 1;
          epi_mem(acc, ct[s][0], SC + (b*G+gg)*16, U + gg*T + t0);
          epi_mem(acc + 16*32, ct[s][1], SC + (b*G+gg)*16, U + gg*T + t0 + 16);
          epi_mem(acc + 16, ct[s][2], SC + ((b+1)*G+gg)*16, U + gg*T + t0);
          epi_mem(acc + 16*32 + 16, ct[s][3], SC + ((b+1)*G+gg)*16, U + gg*T + t0 + 16);
        }
      }
      for (int m=0;m<32;++m) { _mm512_storeu_ps(Y + ((t0+m)*NB + b)*16, _mm512_load_ps(acc + m*32)); _mm512_storeu_ps(Y + ((t0+m)*NB + b + 1)*16, _mm512_load_ps(acc + m*32 + 16)); }
    }
  }
}
template<int MODE> double timeit(){ run<MODE>(); auto a=std::chrono::steady_clock::now(); for(int i=0;i<5;++i) run<MODE>();
  auto b=std::chrono::steady_clock::now(); double s=std::chrono::duration<double>(b-a).count()/5; return s*1e9/((T/16)*NB*G); }
int main(){
  if (syscall(SYS_arch_prctl, 0x1023, 18)) { printf("no amx\n"); return 1; }
  for (int i=0;i<T*G*64;++i) A[i]=(int8_t)(i*7);
  for (int i=0;i<NB*G*1024;++i) Bb[i]=(int8_t)((i*13)%31-15);
  for (int i=0;i<T*G;++i) U[i]=1.0f/(1+i%7);
  for (int i=0;i<NB*G*16;++i) SC[i]=0.01f;
  Cfg cfg; _tile_loadconfig(&cfg);
  printf("2x2: tiles only %.1f | full %.1f ns/step\n", timeit<0>(), timeit<1>());
  _tile_release();
}
